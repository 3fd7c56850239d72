"""Project URLs, assembled from one list per area so each area's views live in their own module."""

from django.urls import path

from . import views
from .profile_views import urlpatterns as profile_urls

app_name = "projects"
urlpatterns = [
    path("", views.project_list, name="list"),
    path("new/", views.project_create, name="create"),
    path("<int:pk>/", views.project_detail, name="detail"),
    path("<int:pk>/settings/", views.project_edit, name="edit"),
    path("<int:pk>/delete/", views.project_delete, name="delete"),
    path("<int:pk>/settings/members/", views.members, name="members"),
    path("<int:pk>/settings/members/<int:membership_pk>/role/", views.member_role, name="member_role"),
    path("<int:pk>/settings/members/<int:membership_pk>/remove/", views.member_remove, name="member_remove"),
]
# Areas append their own routes here as they are built, e.g.:
#   from .profile_views import urlpatterns as profile_urls; urlpatterns += profile_urls
urlpatterns += profile_urls
from .finding_views import urlpatterns as finding_urls  # noqa: E402

urlpatterns += finding_urls
from .run_views import urlpatterns as run_urls  # noqa: E402

urlpatterns += run_urls
from .webhook_views import urlpatterns as webhook_urls  # noqa: E402

urlpatterns += webhook_urls
