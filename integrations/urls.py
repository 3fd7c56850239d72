from django.urls import path

from . import views

app_name = "integrations"
urlpatterns = [
    path("", views.scanners, name="scanners"),
    path("activate/<slug:slug>/", views.activate_connector, name="activate"),
    path("new/<slug:slug>/", views.connection_settings, name="new"),
    path("new/<slug:slug>/test/", views.test, name="test_new"),
    path("<int:pk>/settings/", views.connection_settings, name="settings"),
    path("<int:pk>/test/", views.test, name="test"),
    path("<int:pk>/replace-keys/", views.replace_keys, name="replace_keys"),
    path("<int:pk>/activate/", views.set_active, {"active": True}, name="enable"),
    path("<int:pk>/deactivate/", views.set_active, {"active": False}, name="disable"),
    path("<int:pk>/delete/", views.delete, name="delete"),
]
