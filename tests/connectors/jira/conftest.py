from tests.jira_fixtures import *  # noqa: F403
