"""`manage.py tenable_simulator`: serve the fake Tenable.io on 127.0.0.1 until Ctrl-C (demos, browser tests)."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from integrations.connectors.tenable_io.simulator import ROLE_KEYS, ROLE_NAMES, TenableSimulator


class Command(BaseCommand):
    help = (
        "Serve a simulated Tenable.io API (stateful, deterministic, no internet) until Ctrl-C. Besides the "
        "--access-key/--secret-key pair (an Administrator), it accepts one published key pair per role: "
        + "; ".join(f"{role.replace('_', ' ')}: {a} / {s}" for role, (a, s) in ROLE_KEYS.items())
        + " (the Basic user may view only the assets tagged Location: Dallas)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8834)
        parser.add_argument("--access-key", default="sim-access")
        parser.add_argument("--secret-key", default="sim-secret")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--scans", type=int, default=12)
        parser.add_argument("--hosts", type=int, default=20, help="hosts per scan")
        parser.add_argument("--findings", type=int, default=15, help="findings per host")
        parser.add_argument("--launch-seconds", type=float, default=6.0, help="how long a launched scan runs")

    def handle(self, *args, **options):
        sim = TenableSimulator(
            access_key=options["access_key"],
            secret_key=options["secret_key"],
            seed=options["seed"],
            scans=options["scans"],
            hosts_per_scan=options["hosts"],
            findings_per_host=options["findings"],
            launch_seconds=options["launch_seconds"],
        )
        server = sim.serve(options["host"], options["port"])
        self.stdout.write(self.style.SUCCESS(f"Tenable.io simulator listening on {server.url}"))
        self.stdout.write(f"  API URL:            {server.url}")
        self.stdout.write(
            f"  valid keys:         User Key {sim.keys[0]!r}, Secret Key {sim.keys[1]!r} (Administrator)"
        )
        for access, secret in ROLE_KEYS.values():
            user = sim.user(access)
            sees = "All Assets" if user.view_tags is None else "assets tagged Location: Dallas only"
            self.stdout.write(
                f"  {ROLE_NAMES[user.permissions] + ' keys:':<20}User Key {access!r}, Secret Key {secret!r} ({sees})"
            )
        self.stdout.write(
            f"  refused with 403:   User Key {sim.forbidden_keys[0]!r}, Secret Key {sim.forbidden_keys[1]!r}"
        )
        self.stdout.write(
            f"  data:               seed {options['seed']}, {options['scans']} scans, {options['hosts']} hosts "
            f"per scan, {options['findings']} findings per host, launches take {options['launch_seconds']:g} s"
        )
        self.stdout.write("Press Ctrl-C to stop.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            self.stdout.write("Stopping.")
        finally:
            server.stop()
