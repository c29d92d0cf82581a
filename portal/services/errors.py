class DomainError(Exception):
    """A rule was broken; the message is safe to show to the user."""

    status_code = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotAllowed(DomainError):
    status_code = 403


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class InvalidToken(DomainError):
    pass


class PasswordRejected(DomainError):
    pass
