"""The advocate portal. ``flask --app portal`` finds ``create_app`` here."""


def create_app(test_config: dict | None = None):
    # Imported when called, not at the top: this file runs first for every ``import portal.x``, and the
    # factory imports every blueprint, admin's among them, which import portal again (a cycle).
    from portal.app import create_app as factory

    return factory(test_config)


__all__ = ["create_app"]
