from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0001_initial"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="usageevent", name="usageevent_once"),
        migrations.RemoveIndex(model_name="usageevent", name="usage_by_reference"),
        migrations.RenameField(model_name="usageevent", old_name="kind", new_name="meter"),
        migrations.RenameField(model_name="usageevent", old_name="created_at", new_name="recorded_at"),
    ]
