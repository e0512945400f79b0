"""Query parameters outside an operation's documentation are refused, not ignored.

DRF and django-filter drop what they do not know: a misspelt filter (``?stat=done``), a
second value (``?page_size=10&page_size=20``), an ordering by a field that cannot be
ordered on or a ``page_size`` that is not a number silently give an unfiltered, default
answer that looks right. This backend answers 400 with a message instead. What is known
comes from the same places as the OpenAPI schema: the view's filter set, search and
ordering fields, and its paginator.
"""

from django_filters import BooleanFilter
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError
from rest_framework.filters import BaseFilterBackend, OrderingFilter, SearchFilter

# DRF's own format override (``?format=json``), accepted on every route.
ALWAYS = frozenset({"format"})
YES_NO = ("true", "false")


def view_filters(queryset, view) -> dict:
    """The view's django-filter filters by name (empty when it has none)."""
    for backend_class in getattr(view, "filter_backends", ()):
        if issubclass(backend_class, DjangoFilterBackend):
            filterset = backend_class().get_filterset_class(view, queryset)
            if filterset is not None:
                return filterset.base_filters
    return {}


def known_parameters(request, queryset, view) -> set[str]:
    """Names of the query parameters that ``view`` understands.

    Args:
        request: The DRF request.
        queryset: The view's queryset (django-filter derives its filters from it).
        view: The API view.

    Returns:
        Every parameter name the view's filter backends and paginator read.
    """
    names = set(ALWAYS) | set(view_filters(queryset, view))
    for backend_class in getattr(view, "filter_backends", ()):
        backend = backend_class()
        if isinstance(backend, SearchFilter):
            if getattr(view, "search_fields", None):
                names.add(backend.search_param)
        elif isinstance(backend, OrderingFilter):
            names.add(backend.ordering_param)
    paginator = getattr(view, "paginator", None)
    if paginator is not None:
        for attribute in ("page_query_param", "page_size_query_param"):
            if name := getattr(paginator, attribute, None):
                names.add(name)
    return names


def check_ordering(request, queryset, view, value: str) -> None:
    """Refuse an ordering by anything but the view's ordering fields (``-`` for descending).

    An empty value is the default ordering, as in DRF.
    """
    ordering = Ordering()
    valid = {field for field, _ in ordering.get_valid_fields(queryset, view, {"request": request})}
    if not value:
        return
    terms = value.split(",")
    unknown = [term for term in terms if term.removeprefix("-") not in valid]
    if unknown:
        raise ValidationError(
            {
                ordering.ordering_param: f"cannot order by {', '.join(map(repr, unknown))}; "
                f"one of {', '.join(sorted(valid))} (prefix - for descending)"
            }
        )


class Ordering(OrderingFilter):
    """DRF's ordering, documented with the fields it accepts (a pattern in the schema)."""

    def get_schema_operation_parameters(self, view):
        """The ``ordering`` parameter, its pattern listing the fields."""
        parameters = super().get_schema_operation_parameters(view)
        request = getattr(view, "request", None)
        fields = sorted(
            field
            for field, _ in self.get_valid_fields(view.get_queryset(), view, {"request": request})
        )
        if fields:
            term = "-?(" + "|".join(fields) + ")"
            for parameter in parameters:
                parameter["schema"]["pattern"] = f"^({term}(,{term})*)?$"
                parameter["description"] = (
                    f"Order by {', '.join(fields)}; - for descending, commas for several."
                )
        return parameters


class Search(SearchFilter):
    """DRF's search, documented only where the view has fields to search."""

    def get_schema_operation_parameters(self, view):
        """``search`` when the view sets ``search_fields``, else nothing."""
        if not getattr(view, "search_fields", None):
            return []
        return super().get_schema_operation_parameters(view)


class StrictQueryParameters(BaseFilterBackend):
    """400 for an unknown, repeated or malformed query parameter."""

    def filter_queryset(self, request, queryset, view):
        """Check the query string, then leave the queryset to the other backends."""
        params = request.query_params
        known = known_parameters(request, queryset, view)
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValidationError(
                {
                    name: f"unknown query parameter; this route takes {', '.join(sorted(known))}"
                    for name in unknown
                }
            )
        nul = sorted(name for name, values in params.lists() if any("\x00" in v for v in values))
        if nul:
            raise ValidationError(dict.fromkeys(nul, "contains a NUL character"))
        repeated = sorted(name for name in params if len(params.getlist(name)) > 1)
        if repeated:
            raise ValidationError(dict.fromkeys(repeated, "given more than once"))
        # django-filter reads a bad yes/no value as "any".
        for name, field in view_filters(queryset, view).items():
            value = params.get(name)
            if isinstance(field, BooleanFilter) and value is not None and value not in YES_NO:
                raise ValidationError({name: f"true or false, got {value!r}"})
        # Above the paginator's maximum a page size is clamped to it (documented), not refused.
        paginator = getattr(view, "paginator", None)
        for attribute in ("page_query_param", "page_size_query_param"):
            name = getattr(paginator, attribute, None)
            if name and name in params:
                value = params[name]
                if not (value.isascii() and value.isdigit() and int(value) >= 1):
                    raise ValidationError({name: f"a whole number from 1, got {value!r}"})
        ordering_param = OrderingFilter.ordering_param
        backends = getattr(view, "filter_backends", ())
        if ordering_param in params and any(issubclass(b, OrderingFilter) for b in backends):
            check_ordering(request, queryset, view, params[ordering_param])
        return queryset
