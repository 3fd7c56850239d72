from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts import views as accounts
from api.views import api
from projects import views as projects

urlpatterns = [
    path("", projects.dashboard, name="dashboard"),
    path("setup/", accounts.setup, name="setup"),
    path("healthz", accounts.healthz, name="healthz"),
    path("favicon.ico", accounts.favicon, name="favicon"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("settings/users/", accounts.user_list, name="users"),
    path("settings/users/new/", accounts.user_create, name="user_create"),
    path("settings/users/<int:pk>/", accounts.user_edit, name="user_edit"),
    path("settings/users/<int:pk>/unlock/", accounts.user_unlock, name="user_unlock"),
    path("settings/users/unlock-address/", accounts.address_unlock, name="address_unlock"),
    path("settings/audit/", accounts.audit_log, name="audit_log"),
    path("settings/api-tokens/", include("api.urls")),
    path("api/v1/", api.urls),
    path("integrations/", include("integrations.urls")),
    path("projects/", include("projects.urls")),
    path("projects/", include("webhooks.urls")),
    path("projects/", include("tickets.urls")),
    path("admin/", admin.site.urls),
]

handler500 = "accounts.views.server_error"
