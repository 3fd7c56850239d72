# The webhook models move here from the projects app. Their tables keep the names projects gave them
# (db_table), so this only changes Django's state: no table is created, renamed or copied.

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


def move_content_types(apps, schema_editor, old="projects", new="webhooks"):
    """Permissions and any generic relation follow the models to their new app label."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in ("webhookdelivery", "webhookattempt"):
        if not ContentType.objects.filter(app_label=new, model=model).exists():
            ContentType.objects.filter(app_label=old, model=model).update(app_label=new)


def move_content_types_back(apps, schema_editor):
    move_content_types(apps, schema_editor, old="webhooks", new="projects")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("projects", "0004_webhooks"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="WebhookDelivery",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("event", models.CharField(max_length=40)),
                        ("message_id", models.CharField(max_length=64, unique=True)),
                        ("payload", models.JSONField()),
                        ("url", models.URLField(max_length=2048)),
                        ("status", models.CharField(choices=[("pending", "Pending"), ("sending", "Sending"), ("delivered", "Delivered"), ("failed", "Failed"), ("canceled", "Not sent")], default="pending", max_length=16)),
                        ("attempts", models.PositiveSmallIntegerField(default=0)),
                        ("next_attempt_at", models.DateTimeField(blank=True, db_index=True, null=True)),
                        ("last_status_code", models.PositiveSmallIntegerField(blank=True, null=True)),
                        ("last_error", models.CharField(blank=True, max_length=500)),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("delivered_at", models.DateTimeField(blank=True, null=True)),
                        ("profile", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="webhook_deliveries", to="projects.scannerprofile")),
                        ("run", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="webhook_deliveries", to="projects.scanrun")),
                    ],
                    options={
                        "verbose_name_plural": "webhook deliveries",
                        "db_table": "projects_webhookdelivery",
                        "ordering": ["-created_at", "-id"],
                        "indexes": [models.Index(fields=["profile", "-created_at"], name="projects_we_profile_76c0d9_idx")],
                    },
                ),
                migrations.CreateModel(
                    name="WebhookAttempt",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("number", models.PositiveSmallIntegerField()),
                        ("at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("status_code", models.PositiveSmallIntegerField(blank=True, null=True)),
                        ("error", models.CharField(blank=True, max_length=500)),
                        ("duration_ms", models.PositiveIntegerField(blank=True, null=True)),
                        ("delivery", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="attempt_log", to="webhooks.webhookdelivery")),
                    ],
                    options={
                        "db_table": "projects_webhookattempt",
                        "ordering": ["-at", "-id"],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(move_content_types, move_content_types_back),
    ]
