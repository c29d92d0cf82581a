class DomainError(Exception):
    """A rule was broken; the message is safe to show to the user. The request's unit of work
    (portal.errors.unit_of_work) rolls back what the service wrote, unless ``keeps_writes``: then what was
    written before the error stands (a wrong password's failure count)."""

    status_code = 400
    keeps_writes = False

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
