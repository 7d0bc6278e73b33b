"""What each plan lets a render be: the checks the API makes and the worker repeats."""

import pytest
from notefall.common.errors import PlanLimitError
from notefall.common.settings import RenderSettings
from notefall.common.tier_rules import apply_tier_rules, plan_defaults, plan_problems
from notefall.common.tiers import Tier, limits_for

FREE, PRO, ENTERPRISE = (limits_for(t) for t in (Tier.FREE, Tier.PRO, Tier.ENTERPRISE))


def codes(settings: RenderSettings, plan, seconds=None) -> list[str]:
    return [p.code for p in plan_problems(settings, plan, seconds)]


def test_each_plan_renders_up_to_its_resolution():
    assert codes(RenderSettings(resolution="720p", fps=30), FREE) == []
    assert codes(RenderSettings(resolution="1080p", fps=30), FREE) == ["resolution_not_in_plan"]
    assert codes(RenderSettings(resolution="1080p"), PRO) == []
    assert codes(RenderSettings(resolution="2160p"), PRO) == ["resolution_not_in_plan"]
    assert codes(RenderSettings(resolution="2160p"), ENTERPRISE) == []


def test_a_vertical_video_is_judged_by_its_shorter_side():
    assert codes(RenderSettings(resolution="720p", vertical=True, fps=30), FREE) == []
    assert codes(RenderSettings(resolution="1080p", vertical=True), PRO) == []


def test_an_odd_shape_cannot_smuggle_more_pixels_than_the_plan_has():
    # 720 px tall but 4096 wide: more than twice the pixels of 1280x720.
    assert codes(RenderSettings(resolution="4096x720", fps=30), FREE) == ["resolution_not_in_plan"]


def test_frame_rate_format_transparency_and_length_are_plan_limits():
    problems = plan_problems(
        RenderSettings(resolution="720p", fps=60, format="mov", transparent=True), FREE, 11 * 60
    )
    assert [p.code for p in problems] == [
        "frame_rate_not_in_plan",
        "format_not_in_plan",
        "transparency_not_in_plan",
        "video_too_long_for_plan",
    ]
    assert "30 fps" in problems[0].message and "Upgrade" in problems[0].message
    assert "MP4 or WEBM" in problems[1].message
    assert "10 minutes" in problems[3].message
    assert codes(RenderSettings(fps=60, format="mov", transparent=True), PRO, 29 * 60) == []


def test_the_top_plan_is_not_told_to_upgrade():
    (problem,) = plan_problems(RenderSettings(resolution="3840x2400"), ENTERPRISE)
    assert problem.code == "resolution_not_in_plan" and "Upgrade" not in problem.message


def test_the_free_plan_always_gets_the_watermark():
    asked = RenderSettings(resolution="720p", fps=30, watermark=False)
    assert apply_tier_rules(asked, FREE).watermark is True
    assert apply_tier_rules(RenderSettings(), PRO).watermark is False
    assert apply_tier_rules(RenderSettings(watermark=True), PRO).watermark is True


def test_a_setting_beyond_the_plan_is_refused_with_the_first_problem():
    with pytest.raises(PlanLimitError) as refused:
        apply_tier_rules(RenderSettings(resolution="1080p", fps=60), FREE)
    assert refused.value.code == "resolution_not_in_plan"
    assert "1920x1080" in refused.value.message and "720p" in refused.value.message


def test_unset_output_fields_default_to_what_the_plan_renders():
    assert plan_defaults({}, FREE) == {"resolution": "720p"}
    assert plan_defaults({}, PRO) == {} and plan_defaults({}, ENTERPRISE) == {}
    # What the user set is theirs: too much is refused later, never silently lowered.
    assert plan_defaults({"resolution": "1080p"}, FREE) == {}
    settings = RenderSettings(**plan_defaults({"theme": "neon"}, FREE), theme="neon")
    assert plan_problems(settings, FREE) == []
