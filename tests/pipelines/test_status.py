import io

import pytest
from headwater.pipelines.status import StatusDisplay


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    d = StatusDisplay(["a", "b"], out)
    d.update("a", "running")
    d.update("a", "done", duration=1.5)
    d.update("b", "failed", duration=0.1, note="boom")
    lines = out.getvalue().splitlines()
    assert "\x1b" not in out.getvalue()
    assert lines[0].endswith("running") and "done (1.50s)" in lines[1] and lines[2].endswith("failed (0.10s)  boom")


def test_live_table_on_a_terminal(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    out = FakeTerminal()
    d = StatusDisplay(["a", "b"], out)
    d.update("a", "running")
    d.update("b", "cached", duration=0.0)
    d.close("done")
    text = out.getvalue()
    assert "\x1b[2F" in text  # cursor moved back up to redraw the table
    assert "▶ a" in text and "≡ b" in text and "cached" in text


@pytest.mark.parametrize(("name", "value"), [("NO_COLOR", "1"), ("TERM", "dumb")])
def test_no_color_and_dumb_terminals_get_plain_lines(monkeypatch, name, value):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv(name, value)
    out = FakeTerminal()
    d = StatusDisplay(["a"], out)
    d.update("a", "running")
    d.close("finished")
    assert "\x1b" not in out.getvalue()
    assert out.getvalue().splitlines()[-1] == "finished" and "a" in out.getvalue().splitlines()[0]
