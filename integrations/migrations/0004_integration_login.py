# The account name a ticketing connection signs in with (Jira Cloud's e-mail): visible, not a secret.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0003_key_rights"),
    ]

    operations = [
        migrations.AddField(
            model_name="integration",
            name="login",
            field=models.CharField(blank=True, max_length=254),
        ),
    ]
