"""Pagination of every list in the API: ``?page=`` and ``?page_size=`` (from 1, at most 500)."""

from rest_framework.pagination import PageNumberPagination


class Pages(PageNumberPagination):
    """``?page=`` (from 1) and ``?page_size=`` (from 1, default 50, larger is clamped to 500)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_schema_operation_parameters(self, view):
        """The parameters with their bounds, so the schema says what is refused."""
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_size_query_param:
                parameter["description"] = (
                    f"Results per page (default {self.page_size}; "
                    f"more than {self.max_page_size} gives {self.max_page_size})."
                )
        return parameters
