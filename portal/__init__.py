"""The advocate portal. ``flask --app portal`` finds ``create_app`` here."""


def create_app(test_config: dict | None = None):
    from portal.app import create_app as factory

    return factory(test_config)


__all__ = ["create_app"]
