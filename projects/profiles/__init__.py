"""Scanner profiles: what a connection can bind to (`sources`), saving (`services`), the Scheduler
(`schedules`), the drawer's form and the Settings › Scanners views."""
