"""Where gin files and their ``include`` lines are read from (spin_bench.configs): a packaged
cell's includes come from the suite's tree only, a user's own file resolves the working directory
first, and parsing logs nothing at error level (gin never searches for a file)."""
import logging
import os

import gin
import pytest

from spin_bench import configs

SMOKE_CELL = "gin/experiments/smoke/cheetah-run/medium-expert/spin_iql.gin"


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """A working directory outside the checkout."""
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    gin.clear_config()


def test_a_stray_fragment_in_the_working_directory_does_not_change_a_packaged_cell(elsewhere):
    stray = elsewhere / "gin" / "scales"
    stray.mkdir(parents=True)
    (stray / "smoke.gin").write_text("Schedule.num_steps = 3\nExperiment.task = 'finger-spin'\n")
    configs.parse([SMOKE_CELL], [], finalize=False)
    assert configs.query("Schedule.num_steps") == 60
    assert configs.query("Experiment.task") == "cheetah-run"


def test_a_users_own_file_includes_its_own_copy_first_then_the_suites_fragments(elsewhere):
    (elsewhere / "gin" / "scales").mkdir(parents=True)
    (elsewhere / "gin" / "scales" / "smoke.gin").write_text("Schedule.num_steps = 3\n")
    (elsewhere / "mine.gin").write_text("include 'gin/scales/smoke.gin'\n"
                                        "include 'gin/tasks/finger-spin.gin'  # the suite's\n"
                                        "Schedule.eval_every = 2\n")
    configs.parse(["mine.gin"], [], finalize=False)
    assert configs.query("Schedule.num_steps") == 3
    assert configs.query("Experiment.task") == "finger-spin"
    assert configs.query("Schedule.eval_every") == 2


def test_parsing_logs_no_error_and_does_not_touch_gins_search_path(elsewhere, caplog):
    before = list(gin.config._LOCATION_PREFIXES)  # read here only, to show parse leaves it alone
    with caplog.at_level(logging.INFO):
        configs.parse([SMOKE_CELL], [], finalize=False)
        configs.parse([SMOKE_CELL], ["Schedule.num_steps = 5"], finalize=False)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert gin.config._LOCATION_PREFIXES == before


def test_gin_errors_name_the_file_and_line_behind_an_include(elsewhere):
    (elsewhere / "bad.gin").write_text("include 'gin/tasks/finger-spin.gin'\n\nNoSuchThing.x = 1\n")
    with pytest.raises(configs.ConfigError, match=r"(?s)NoSuchThing.*bad\.gin.*line 3"):
        configs.parse(["bad.gin"], [], finalize=False)


@pytest.mark.parametrize("text, message", [
    ("include 'gin/scales/nope.gin'\n", r"mine\.gin: included gin file not found: gin/scales/nope\.gin"),
    ("include gin/scales/smoke.gin\n", r"mine\.gin, line 1: malformed include"),
    ("include 'mine.gin'\n", r"include cycle: .*mine\.gin -> .*mine\.gin"),
])
def test_a_bad_include_is_one_clear_error(elsewhere, text, message):
    (elsewhere / "mine.gin").write_text(text)
    with pytest.raises(configs.ConfigError, match=message):
        configs.parse(["mine.gin"], [], finalize=False)


def test_a_suite_files_include_is_looked_up_in_the_suite_tree_only(elsewhere):
    (elsewhere / "gin").mkdir()
    (elsewhere / "gin" / "only_here.gin").write_text("Schedule.num_steps = 3\n")
    suite_file = os.path.join(configs.GIN_DIR, "demo.gin")
    assert configs.is_suite_file(suite_file) and not configs.is_suite_file(str(elsewhere / "gin" / "only_here.gin"))
    with pytest.raises(configs.ConfigError, match="not found in the suite's tree"):
        configs.resolve_include("gin/only_here.gin", suite_file)
