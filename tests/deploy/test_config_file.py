"""``livedesk serve --config livedesk.toml`` (issue 22, item 8): every setting can be in the
file, the environment overrides the file and flags override both, and a bad file refuses to
start with an error that names the key. deploy/livedesk.example.toml holds every setting
with its default."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import build_parser, serve_config
from gateway.config import Config, ConfigError, field_names, file_keys, load_config_file

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "livedesk.example.toml"
DOC = ROOT / "docs" / "configuration.md"
STRONG = "5f0c8c1d7e2a4b6f9a3e1d0c7b5a49382716f5e4d3c2b1a0f9e8d7c6b5a49382"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for k in list(os.environ):
        if k.startswith("LIVEDESK_"):
            monkeypatch.delenv(k)


def write(tmp_path: Path, text: str, name: str = "livedesk.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def serve_args(*argv: str):
    return build_parser().parse_args(["serve", *argv])


# --- the example file ---------------------------------------------------------------------

def example_lines() -> dict[str, str]:
    """key -> 'set' or 'commented' for every `key = …` / `# key = …` line of the example."""
    out: dict[str, str] = {}
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^(# )?([a-z_0-9]+) = ", line)
        if m:
            assert m.group(2) not in out, f"{m.group(2)} twice in the example"
            out[m.group(2)] = "commented" if m.group(1) else "set"
    return out


def test_example_holds_every_setting():
    lines = example_lines()
    assert set(lines) == set(file_keys()), (sorted(set(file_keys()) - set(lines)),
                                            sorted(set(lines) - set(file_keys())))
    assert "dev" not in lines


def test_example_values_are_the_defaults_and_load():
    values = load_config_file(EXAMPLE)
    default = Config()
    assert values, "the example sets nothing"
    for key, value in values.items():
        assert value == getattr(default, key), (key, value, getattr(default, key))
    Config.from_env(values, dev=True).validate()


def test_examples_of_commented_settings_have_the_right_types(tmp_path):
    text = re.sub(r"^# ([a-z_0-9]+ = )", r"\1", EXAMPLE.read_text(encoding="utf-8"), flags=re.M)
    values = load_config_file(write(tmp_path, text))
    assert set(values) == set(file_keys())
    # relative paths are relative to the file's directory
    assert values["data_dir"] == tmp_path / "data"


def test_every_file_key_is_documented():
    text = DOC.read_text(encoding="utf-8")
    assert "## The config file" in text
    assert set(file_keys()) == set(field_names()) - {"dev"}
    for key in file_keys():
        assert f"| `{key}` |" in text, key


# --- precedence: file < environment < flags ---------------------------------------------

def test_file_then_env_then_flags(tmp_path, monkeypatch):
    f = write(tmp_path, f'port = 9001\nagent_capacity = 7\nsecret = "{STRONG}"\n'
                        'stun_urls = ["stun:file:3478"]\nlog_level = "warning"\n'
                        'rooms = ["rooms/a.json"]\nmedia_mode = "transcode"\n')
    c = serve_config(serve_args("--config", str(f), "--no-store"))
    assert (c.port, c.agent_capacity, c.stun_urls) == (9001, 7, ["stun:file:3478"])
    assert c.log_level == "warning" and c.rooms == [tmp_path / "rooms" / "a.json"]
    assert c.media_mode == "transcode"
    monkeypatch.setenv("LIVEDESK_PORT", "9002")
    monkeypatch.setenv("LIVEDESK_STUN_URLS", "stun:env:3478")
    monkeypatch.setenv("LIVEDESK_LOG_LEVEL", "ERROR")
    c = serve_config(serve_args("--config", str(f), "--no-store"))
    assert (c.port, c.agent_capacity, c.stun_urls) == (9002, 7, ["stun:env:3478"])
    assert c.log_level == "ERROR"
    c = serve_config(serve_args("--config", str(f), "--no-store", "--port", "9003",
                                "--log-level", "DEBUG", "--media-mode", "passthrough"))
    assert (c.port, c.log_level, c.media_mode) == (9003, "DEBUG", "passthrough")
    assert c.secret == STRONG and c.agent_capacity == 7


def test_livedesk_config_env_names_the_file_and_the_flag_wins(tmp_path, monkeypatch):
    a = write(tmp_path, f'port = 9011\nsecret = "{STRONG}"\n', "a.toml")
    b = write(tmp_path, f'port = 9012\nsecret = "{STRONG}"\n', "b.toml")
    monkeypatch.setenv("LIVEDESK_CONFIG", str(a))
    assert serve_config(serve_args("--no-store")).port == 9011
    assert serve_config(serve_args("--config", str(b), "--no-store")).port == 9012


def test_tables_become_the_json_object_settings(tmp_path):
    f = write(tmp_path, 'compensation_limits = {a1 = 200, vip = {limit = 500, agents = ["a2"]}}\n'
                        '[agent_capacities]\na1 = 8\n')
    v = load_config_file(f)
    assert v["compensation_limits"] == {"a1": 200, "vip": {"limit": 500, "agents": ["a2"]}}
    assert v["agent_capacities"] == {"a1": 8}


# --- errors name the key -------------------------------------------------------------------

@pytest.mark.parametrize("text, pattern", [
    ("prot = 8080\n", r"unknown key 'prot' \(did you mean 'port'\?\)"),
    ("[serving]\nport = 8080\n", r"unknown table 'serving'"),
    ('port = "8080"\n', r"key 'port' must be a whole number, not str '8080'"),
    ("port = 80.5\n", r"key 'port' must be a whole number, not float"),
    ("drain_s = true\n", r"key 'drain_s' must be a number, not bool"),
    ('ice_allow_loopback = "yes"\n', r"key 'ice_allow_loopback' must be true or false"),
    ('stun_urls = "stun:a:3478"\n', r"key 'stun_urls' must be an array of strings"),
    ("rooms = [1, 2]\n", r"key 'rooms' must be an array of paths"),
    ('compensation_limits = "{}"\n', r"key 'compensation_limits' must be a table"),
    ("redis_url = 6379\n", r"key 'redis_url' must be a string, not int"),
    ("dev = true\n", r"key 'dev': dev mode is turned on only by `livedesk serve --dev`"),
    ("port = \n", r"not valid TOML: .*line 1"),
])
def test_bad_files_are_refused_naming_the_key(tmp_path, text, pattern):
    f = write(tmp_path, text)
    with pytest.raises(ConfigError, match=pattern) as e:
        load_config_file(f)
    assert str(f) in str(e.value)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="cannot read it"):
        load_config_file(tmp_path / "nope.toml")


def test_values_are_validated_after_merging(tmp_path):
    f = write(tmp_path, f'secret = "{STRONG}"\nlog_level = "chatty"\n')
    with pytest.raises(ConfigError, match="LIVEDESK_LOG_LEVEL='chatty'"):
        serve_config(serve_args("--config", str(f), "--no-store"))
    f = write(tmp_path, f'secret = "{STRONG}"\nudp_port_min = 5000\nudp_port_max = 4000\n')
    with pytest.raises(ConfigError, match="UDP_PORT_MIN"):
        serve_config(serve_args("--config", str(f), "--no-store"))


def test_livedesk_serve_exits_2_naming_the_key(tmp_path):
    """The real command: nothing starts, the key is on stderr, exit code 2."""
    f = write(tmp_path, f'secret = "{STRONG}"\nagent_capacty = 5\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEDESK_")}
    env["PYTHONPATH"] = str(ROOT)
    r = subprocess.run([sys.executable, "-m", "gateway.cli", "serve", "--config", str(f),
                        "--no-store", "--port", "0"], capture_output=True, text=True,
                       timeout=120, env=env, cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "unknown key 'agent_capacty' (did you mean 'agent_capacity'?)" in r.stderr
    assert "listening" not in r.stdout
