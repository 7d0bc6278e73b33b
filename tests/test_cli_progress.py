import io

from notefall.cli.progress_bar import ProgressBar
from notefall.common.progress import ProgressEvent, Stage


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_shows_stage_percent_and_eta_on_a_terminal():
    term = _Terminal()
    bar = ProgressBar(stream=term)
    bar(ProgressEvent(Stage.RENDERING, 40.0, 75.0, 42.0))
    bar.close()
    text = term.getvalue()
    assert "rendering" in text and "ETA 1:15" in text and "42%" in text


def test_progress_bar_is_silent_when_output_is_not_a_terminal():
    log = io.StringIO()
    bar = ProgressBar(stream=log)
    bar(ProgressEvent(Stage.RENDERING, 40.0, 75.0, 42.0))
    bar.close()
    assert log.getvalue() == ""
