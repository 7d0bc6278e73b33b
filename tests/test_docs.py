"""The user guide must not drift from the code it documents."""

from pathlib import Path

from notefall.common.engine.themes import THEMES
from notefall.common.settings import RenderSettings
from notefall.common.video.codecs import preset_table_markdown

ROOT = Path(__file__).resolve().parent.parent
CLI_GUIDE = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")


def test_every_render_setting_is_documented_with_its_json_name():
    missing = [name for name in RenderSettings.model_fields if f"`{name}`" not in CLI_GUIDE]
    assert missing == []


def test_every_theme_is_documented():
    assert [t for t in THEMES if f"`{t}`" not in CLI_GUIDE] == []


def test_quality_preset_table_in_the_guide_is_the_one_the_encoder_uses():
    assert preset_table_markdown() in CLI_GUIDE


def test_readme_quick_start_is_the_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    assert [line for line in quick.splitlines() if line.strip()] == ["make demo", "make test"]
