from django.core.exceptions import ValidationError


def field_error(field: str, message: str, code: str = "invalid") -> ValidationError:
    """A ValidationError bound to one field that keeps its code (API error shapes use it)."""
    return ValidationError({field: ValidationError(message, code=code)})
