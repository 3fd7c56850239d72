"""Re-encrypt every stored secret with the first FERNET_KEYS entry (step 3 of the rotation in README)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from integrations.checks import encrypted_models


class Command(BaseCommand):
    help = "Re-encrypt stored secrets with the newest FERNET_KEYS entry. Idempotent; prints counts only."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=200)

    def handle(self, *args, batch_size: int, **options):
        from cryptography.fernet import InvalidToken

        total = failed = 0
        for model, names in encrypted_models():
            done = 0
            pks = list(model.objects.order_by("pk").values_list("pk", flat=True))
            for start in range(0, len(pks), batch_size):
                with transaction.atomic():
                    for pk in pks[start : start + batch_size]:
                        try:
                            row = model.objects.only("pk", *names).get(pk=pk)
                        except InvalidToken:
                            failed += 1
                            self.stderr.write(
                                f"{model._meta.label} {pk}: cannot be decrypted with any FERNET_KEYS entry"
                            )
                            continue
                        # Saving encrypts with the first key (get_db_prep_save).
                        row.save(update_fields=names)
                        done += 1
            total += done
            self.stdout.write(f"{model._meta.label}: {done} row(s) re-encrypted")
        self.stdout.write(f"Done: {total} row(s) re-encrypted with the first key, {failed} undecryptable.")
        if failed:
            raise CommandError(
                f"{failed} row(s) could not be decrypted; restore the old key as a FERNET_KEYS entry."
            )
