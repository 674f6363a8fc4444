from django.urls import include, path

from tenants import views

account_patterns = [
    path("login/", views.login_view, name="login"),
    path("login/verify/", views.verify_view, name="verify"),
    path("login/enroll/", views.enroll_view, name="enroll"),
    path("logout/", views.logout_view, name="logout"),
    path("tenant/", views.switch_tenant_view, name="switch_tenant"),
    path("invitations/<str:token>/", views.invitation_view, name="invitation"),
]

urlpatterns = [path("accounts/", include((account_patterns, "accounts")))]
