from django.contrib.admin.apps import AdminConfig


class SwitchboardAdminConfig(AdminConfig):
    """The Django admin, for platform operators, behind two-factor authentication."""

    default_site = "config.admin.OperatorAdminSite"
