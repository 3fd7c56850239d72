# The webhook models now belong to the webhooks app (webhooks.0001_initial); their tables stay where they are.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("projects", "0004_webhooks"),
        ("webhooks", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="WebhookAttempt"),
                migrations.DeleteModel(name="WebhookDelivery"),
            ],
            database_operations=[],
        ),
    ]
