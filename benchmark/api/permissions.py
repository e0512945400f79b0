"""API permissions: who may read the records and who may queue and control runs."""

from rest_framework.permissions import SAFE_METHODS, BasePermission, DjangoModelPermissions


class ModelPermissions(DjangoModelPermissions):
    """Reading needs the model's ``view`` permission; POST needs ``add``.

    Anonymous users get 401/403, never data; POST is how runs are queued and controlled.
    """

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": [],
    }


class StaffOrViewPermission(BasePermission):
    """Read-only access for staff, or for users with the model's ``view`` permission.

    Anonymous users get 401/403 and never data; writes are refused to everyone.
    """

    def has_permission(self, request, view):
        """Authenticated, a safe method, and staff or the ``view`` permission on the model."""
        user = request.user
        if not (user and user.is_authenticated) or request.method not in SAFE_METHODS:
            return False
        if user.is_staff:
            return True
        meta = view.get_queryset().model._meta
        return user.has_perm(f"{meta.app_label}.view_{meta.model_name}")
