"""The migration history: one head, files that sort in the order they apply, ids that never change."""

from __future__ import annotations

import re
from pathlib import Path

from alembic.script import Script, ScriptDirectory

from shared.migrate import alembic_config

#: Revisions that deployed databases may have recorded in alembic_version: never rename these ids.
DEPLOYED = {
    "0001_core",
    "0002_duplicate_counts",
    "0003_ledger",
    "0004_shipping_notifications",
    "0005_dead_letter_archive",
    "0006_listing_reservations",
    "0007_outbox_schedule",
    "0010_console_sessions",
    "0011_token_scopes",
    "0020_accepted_orders",
    "0021_accepted_cancellations",
}
#: Where the per-domain branches meet; every later revision follows exactly one other.
ONE_HISTORY = "aa2726786112"
FILE_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}-\d{4}_[a-z0-9_]+\.py$")


def _scripts() -> list[Script]:
    directory = ScriptDirectory.from_config(alembic_config())
    return sorted(directory.walk_revisions(), key=lambda script: Path(script.path).name)


def _parents(script: Script) -> set[str]:
    return set(script._all_down_revisions) | set(script.dependencies or ())


def test_the_history_has_one_head():
    assert ScriptDirectory.from_config(alembic_config()).get_heads() == [_scripts()[-1].revision]


def test_revisions_deployed_databases_recorded_keep_their_ids():
    assert {script.revision for script in _scripts()} >= DEPLOYED | {ONE_HISTORY}


def test_migration_files_sort_in_the_order_they_apply():
    seen: set[str] = set()
    for script in _scripts():
        assert _parents(script) <= seen, f"{Path(script.path).name} follows a revision in a later file"
        seen.add(script.revision)


def test_every_file_is_date_prefixed_and_names_its_revision_in_its_docstring():
    for script in _scripts():
        name = Path(script.path).name
        assert FILE_NAME.match(name), name
        assert f"Revision ID: {script.revision}\n" in (script.module.__doc__ or ""), name


def test_after_the_branches_meet_every_revision_follows_exactly_one_other():
    scripts = _scripts()
    later = [s for s in scripts if Path(s.path).name > Path(_by_id(scripts, ONE_HISTORY).path).name]
    previous = ONE_HISTORY
    for script in later:
        assert _parents(script) == {previous}, f"{Path(script.path).name} does not follow {previous}"
        previous = script.revision


def _by_id(scripts: list[Script], revision: str) -> Script:
    return next(script for script in scripts if script.revision == revision)


def test_circulate_db_heads_prints_the_one_head():
    from click.testing import CliRunner

    from workers.cli import main

    result = CliRunner().invoke(main, ["db", "heads"])
    assert result.exit_code == 0, result.output
    assert result.output.split() == [_scripts()[-1].revision, "(head)"]
