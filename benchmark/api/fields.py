"""Serializer fields shared by the API."""

from rest_framework import serializers


class SlugReference(serializers.SlugRelatedField):
    """A reference to an object by a text field, refusing text no database can look up.

    PostgreSQL cannot compare text holding a NUL character (it raises instead of finding
    nothing), so such a value is refused with the usual "does not exist" style message.
    """

    def to_internal_value(self, data):
        """Refuse NUL characters before the lookup, then look up as usual."""
        if isinstance(data, str) and "\x00" in data:
            self.fail("invalid")
        return super().to_internal_value(data)
