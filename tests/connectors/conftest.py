from tests.tenable_fixtures import *  # noqa: F403
