"""Config: defaults, file, environment precedence, and clear errors with exit code 2."""

from __future__ import annotations

import subprocess
import sys
import os
from pathlib import Path

import orjson
import pytest

from quantumtrader.config import ConfigError, check_listeners, load_config, render_toml


def test_defaults_are_the_protocol_endpoints_and_documented_values() -> None:
    cfg = load_config(environ={})
    assert cfg.endpoints.events == "tcp://127.0.0.1:5555"
    assert cfg.endpoints.feed == "tcp://127.0.0.1:5556"
    assert cfg.endpoints.control == "tcp://127.0.0.1:5557"
    assert cfg.sidecar.port == 8080
    assert cfg.execution.command_timeout_ms == 3000
    assert cfg.execution.command_retries == 2
    assert (cfg.signals.buy_threshold, cfg.signals.sell_threshold) == (0.7, 0.3)


def test_file_overrides_defaults_and_env_overrides_file_and_options_override_env(tmp_path: Path) -> None:
    path = tmp_path / "qt.toml"
    path.write_text('data_dir = "/from/file"\n[sidecar]\nport = 9001\nhost = "0.0.0.0"\n[daemon]\nbatch_max = 10\n')
    env = {"QT_SIDECAR__PORT": "9002", "QT_DATA_DIR": "/from/env"}

    from_file = load_config(path, environ={})
    from_env = load_config(path, environ=env)
    from_option = load_config(path, environ=env, overrides={"sidecar.port": 9003, "data_dir": "/from/option"})

    assert (from_file.sidecar.port, from_file.sidecar.host, from_file.daemon.batch_max, from_file.data_dir) == (9001, "0.0.0.0", 10, "/from/file")
    assert (from_env.sidecar.port, from_env.sidecar.host, from_env.data_dir) == (9002, "0.0.0.0", "/from/env")
    assert (from_option.sidecar.port, from_option.data_dir) == (9003, "/from/option")


@pytest.mark.parametrize(
    ("toml", "env", "key"),
    [
        ("[sidecar]\nport = 70000\n", {}, "sidecar.port"),
        ("[sidecar]\nport = \"eighty\"\n", {}, "sidecar.port"),
        ("[sidecar]\nprot = 8080\n", {}, "sidecar.prot"),
        ("[sidecarr]\n", {}, "sidecarr"),
        ("[endpoints]\nevents = \"ipc:///tmp/x\"\n", {}, "endpoints.events"),
        ("[signals]\nweight_quantum = 0.9\n", {}, "signals.weight_*"),
        ("", {"QT_DAEMON__BATCH_MAX": "-3"}, "daemon.batch_max"),
        ("", {"QT_DAEMON__BATCH_MAX": "lots"}, "daemon.batch_max"),
        ("", {"QT_NOPE__X": "1"}, "QT_NOPE__X"),
        ("", {"QT_DAEMON__BUSY_POL_US": "0"}, "daemon.busy_pol_us"),  # a misspelt key in a known section
        ("", {"QT_DAEMON__BUSY_POLL_US": "100001"}, "daemon.busy_poll_us"),
        ("[log]\nformat = \"xml\"\n", {}, "log.format"),
        # found by the daemon audit: a bad map entry was a traceback when the daemon was built; a skew of 1e18 ms let
        # a tick's time pass year 9999 and its formatting fail
        ("[execution]\nsymbol_map = [\"EURUSD=EURUSD.r\"]\n", {}, "execution.symbol_map"),
        ("", {"QT_DAEMON__MAX_CLOCK_SKEW_MS": "1000000000000000000"}, "daemon.max_clock_skew_ms"),
        ("this is = = not toml", {}, "--config"),
        # a huge horizon was a MemoryError when the models' state was allocated (max_symbols x H x features x 8 bytes)
        ("[signals]\nhorizon_ticks = 100000000\n", {}, "signals.horizon_ticks"),
        ("", {"QT_SIGNALS__HORIZON_TICKS": "1001"}, "signals.horizon_ticks"),
        # a review (2026-12-05): this loaded, then every account event was refused
        ("", {"QT_PAPER__CURRENCY": "X" * 17}, "paper.currency"),
        # ... and this a TypeError from the first event encoded (bytes of another encoding reach Python as surrogates)
        ("", {"QT_PAPER__TERMINAL": "caf\udce9@X"}, "paper.terminal"),
        ("", {"QT_EXECUTION__SYMBOL_MAP": "t:EURUSD=EURUSD\udce9"}, "execution.symbol_map"),
        ("", {"QT_ENDPOINTS__FEED": "tcp://0.0.0.0:5555"}, "endpoints"),
        # a helper's check of the models (2026-12-06): thresholds on one side of 0.5 made a cold symbol's "no opinion"
        # a SELL (or BUY) that auto-trading could act on; a learning rate x L2 of 1 or more diverged the SGD learner
        ("[signals]\nbuy_threshold = 0.9\nsell_threshold = 0.6\n", {}, "signals.buy_threshold"),
        ("[signals]\nbuy_threshold = 0.4\nsell_threshold = 0.1\n", {}, "signals.buy_threshold"),
        ("[signals]\nsgd_learning_rate = 100.0\n", {}, "signals.sgd_learning_rate"),
        ("[signals]\nsgd_learning_rate = 1.0\nsgd_l2 = 1.0\n", {}, "signals.sgd_l2"),
        # Python's int() and float() take these; a TOML file does not, and neither does the environment now
        ("", {"QT_SIDECAR__PORT": "8_080"}, "sidecar.port"),
        ("", {"QT_SIDECAR__PORT": "\u0668\u0660\u0668\u0661"}, "sidecar.port"),  # Arabic-Indic 8081
        ("", {"QT_SIGNALS__INTERVAL_S": "1_0.5"}, "signals.interval_s"),
        ("", {"QT_SIGNALS__INTERVAL_S": "\uff11\uff10"}, "signals.interval_s"),  # fullwidth 10
        # a Windows review (2026-12-05): one file there, or a name Windows refuses, and loaded everywhere
        *(("", {"QT_STORE__FILE_NAME": name}, "store.file_name") for name in (
            "Orders.sqlite", "USERS.JSON", "Daemon.Lock.", "a<b.db", "a>b.db", 'a"b.db', "a|b.db", "a?b.db", "a*b.db", "a\tb.db",
            "quantumtrader.db.", "quantumtrader.db ", "CON", "nul.db", "Com1.sqlite", "LPT9", "aux .db",
        )),
        *(("", {"QT_LOG__DIR": name}, "log.dir") for name in ("Orders.sqlite/logs", "QUANTUMTRADER.DB\\logs", "Numba-Cache", "JWT_SECRET.")),
        ("", {"QT_LOG__DIR": "My.db/logs", "QT_STORE__FILE_NAME": "my.DB"}, "log.dir"),
        # a trader's walk-through (2026-12-06): these loaded, then every order was refused, the daemon's own default
        # stop blamed as "pips, not a price"
        ("[risk]\nlot_min = 5.0\nlot_max = 1.0\n", {}, "risk.lot_min"),
        ("[risk]\nmin_stop_pct = 5.0\nmax_stop_pct = 0.5\n", {}, "risk.min_stop_pct"),
        ("[risk]\nmin_stop_pct = 0.5\nmax_stop_pct = 0.5\n", {}, "risk.min_stop_pct"),
        ("[risk]\ndefault_stop_pct = 5.0\nmax_stop_pct = 1.0\nmax_default_stop_pct = 0.5\n", {}, "risk.default_stop_pct"),
        ("[risk]\nmin_stop_pct = 0.3\n", {}, "risk.default_stop_pct"),  # the default stop, 0.2 %, too near
        ("[risk]\nmax_stop_pct = 0.5\n", {}, "risk.max_default_stop_pct"),  # capped at 1 %: beyond what is allowed
        ("", {"QT_RISK__MIN_STOP_PCT": "0.1", "QT_RISK__MAX_DEFAULT_STOP_PCT": "0.05"}, "risk.max_default_stop_pct"),
        # an auto-trading hunt (2026-12-06): a fixed size the risk rules refuse every time loaded, and every signal was
        # a journaled refusal (below the minimum) or skipped (above the symbol's limit) while health said healthy
        ("", {"QT_AUTO_TRADE__LOTS": "0.005"}, "auto_trade.lots"),
        ("", {"QT_AUTO_TRADE__LOTS": "6"}, "auto_trade.lots"),  # above max_lots_per_symbol (5)
        ("", {"QT_AUTO_TRADE__LOTS": "11", "QT_RISK__MAX_LOTS_PER_SYMBOL": "0"}, "auto_trade.lots"),  # above lot_max (10)
        # a security review (2026-12-06): the daemon's sockets have no authentication, and one bound to every address
        # loaded with an info line: anyone on the network could trade, lift the kill switch and stop the daemon
        *(("", {f"QT_ENDPOINTS__{name.upper()}": f"tcp://{host}:{port}"}, f"endpoints.{name}") for name, port in (("events", 5555), ("feed", 5556), ("control", 5557))
          for host in ("0.0.0.0", "*", "[::]", "192.168.1.20", "vps.example.com")),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, toml: str, env: dict[str, str], key: str) -> None:
    path = tmp_path / "qt.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=env)
    assert info.value.key == key


@pytest.mark.parametrize("name", ["console.db", "com10.db", "nul-ish.db", "my.store.db", "Ørders.sqlite", "LPT.db"])
def test_store_names_that_windows_takes_load(name: str) -> None:
    assert load_config(environ={"QT_STORE__FILE_NAME": name, "QT_LOG__DIR": "Logs"}).store.file_name == name


@pytest.mark.parametrize(
    ("env", "key"),
    [  # a review (2026-12-05): these loaded, then the child failed to bind at every restart
        ({"QT_PAPER__COMMAND_ENDPOINT": "tcp://127.0.0.1:5557"}, "paper.command_endpoint"),
        ({"QT_PAPER__COMMAND_ENDPOINT": "tcp://*:5555"}, "paper.command_endpoint"),
        ({"QT_SIDECAR__PORT": "5556"}, "sidecar.port"),
        ({"QT_SIDECAR__PORT": "5555", "QT_SIDECAR__HOST": "0.0.0.0"}, "sidecar.port"),
        ({"QT_SIDECAR__PORT": "5557", "QT_ENDPOINTS__CONTROL": "tcp://localhost:5557"}, "sidecar.port"),
        ({"QT_PAPER__COMMAND_ENDPOINT": "tcp://127.0.0.1:8080"}, "sidecar.port"),
    ],
)
def test_a_child_on_a_port_another_listener_takes_is_refused_by_the_command_that_starts_it(env: dict[str, str], key: str) -> None:
    config = load_config(environ=env)  # loads: a command that starts neither child need not care (a later review)
    with pytest.raises(ConfigError) as info:
        check_listeners(config, ("paper", "sidecar"))
    assert info.value.key == key


def test_listeners_on_one_port_of_other_addresses_and_a_16_character_currency_load() -> None:
    config = load_config(environ={"QT_SIDECAR__HOST": "127.0.0.2", "QT_SIDECAR__PORT": "5557", "QT_PAPER__CURRENCY": "X" * 16})
    assert (config.sidecar.port, config.paper.currency) == (5557, "X" * 16)


def test_horizon_ticks_is_bounded_with_a_message_that_says_the_bound(tmp_path: Path) -> None:
    path = tmp_path / "qt.toml"
    path.write_text("[signals]\nhorizon_ticks = 1000\n")
    assert load_config(path, environ={}).signals.horizon_ticks == 1000

    with pytest.raises(ConfigError, match=r"signals.horizon_ticks: must be between 1 and 1000 \(got 100000000\)"):
        load_config(environ={"QT_SIGNALS__HORIZON_TICKS": "100000000"})


def _numeric_settings() -> list[tuple[str, type]]:
    import dataclasses
    import typing

    from quantumtrader.config import _sections

    out = []
    for section, cls in _sections().items():
        hints = typing.get_type_hints(cls)
        out += [(f"{section}.{f.name}", hints[f.name]) for f in dataclasses.fields(cls) if hints[f.name] in (int, float)]
    return out


@pytest.mark.parametrize(("key", "kind"), _numeric_settings(), ids=lambda v: v if isinstance(v, str) else v.__name__)
def test_every_numeric_setting_refuses_a_value_beyond_its_kind_with_its_key(key: str, kind: type) -> None:
    """Found by trying extremes at `qt-daemon run`: events_hwm 1e20 was an OverflowError at bind, health_interval_s
    1e308 an OverflowError in the poller (x 1000 = inf), features.wave_window 1e9 and batch_max 1e12 MemoryErrors."""
    section, _, name = key.partition(".")
    for value in (("99999999999999999999", "-99999999999999999999") if kind is int else ("1e308", "-1e308")):
        with pytest.raises(ConfigError) as info:
            load_config(environ={f"QT_{section.upper()}__{name.upper()}": value})
        assert info.value.key == key


def test_rendered_default_file_loads_back_to_the_same_config(tmp_path: Path) -> None:
    path = tmp_path / "qt.toml"
    config = load_config(environ={})
    path.write_text(render_toml(config, commented=True))
    assert load_config(path, environ={}) == config
    # and every key is in the file with its value: a key left out would load back as its default all the same
    import dataclasses
    import tomllib

    written = tomllib.loads(path.read_text())
    expected = {"data_dir": config.data_dir} | {
        section.name: {f.name: getattr(getattr(config, section.name), f.name) for f in dataclasses.fields(getattr(config, section.name))}
        for section in dataclasses.fields(config)
        if dataclasses.is_dataclass(getattr(config, section.name))
    }
    as_toml = orjson.loads(orjson.dumps(expected))  # tuples as lists, as TOML has them
    assert written == as_toml


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("QT_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "quantumtrader", *args], capture_output=True, text=True, env=full_env, timeout=60)


@pytest.mark.parametrize(
    ("key", "value", "says", "named"),
    [
        ("features.perm_order", "20", "2..6", "features.perm_order"),
        ("features.perm_window", "3", "must exceed features.perm_order", "features.perm_window"),
        ("features.chaos_window", "1", "at least", "features.chaos_window"),
        ("features.wave_bins", "32", "odd", "features.wave_bins"),
        ("sidecar.host", "not a host!!", "IP address", "sidecar.host"),
        ("sidecar.host", "", "IP address", "sidecar.host"),
        ("risk.day_start", "17:00 America", "names no time zone", "risk.day_start"),  # a folder of zones: IsADirectoryError (a review)
        ("risk.day_start", "17:00 Mars/Olympus", "names no time zone", "risk.day_start"),
        ("risk.day_start", "5pm", "HH:MM", "risk.day_start"),
        ("signals.interval_s", "400", "above signals.interval_s", "auto_trade.break_gap_s"),  # every re-published signal a break (a review)
    ],
)
def test_values_the_daemon_cannot_start_with_are_refused_when_the_config_loads(key: str, value: str, says: str, named: str) -> None:
    # The feature kernel's limits were checked only when the daemon built its kernels (a traceback, exit 1, after
    # config show had accepted the value); a bad sidecar host only when the sidecar bound (restarted for ever)
    section, name = key.split(".")
    with pytest.raises(ConfigError, match=says) as refused:
        load_config(environ={f"QT_{section.upper()}__{name.upper()}": value})
    assert refused.value.key == named


def test_run_with_a_value_the_kernels_refuse_exits_2_naming_it_without_a_traceback(tmp_path: Path) -> None:
    result = _cli("run", "--no-sidecar", env={"QT_FEATURES__WAVE_BINS": "32", "QT_DATA_DIR": str(tmp_path / "data")})
    assert result.returncode == 2, result.stderr[-2000:]
    assert "features.wave_bins" in result.stderr and "Traceback" not in result.stderr + result.stdout


def test_settings_that_clash_are_refused_naming_the_key_and_whose_port_by_the_commands_they_concern(tmp_path: Path) -> None:
    """`qt-daemon sidecar --port 5557` and a paper terminal on the control port started and failed to bind at every
    restart; a 17-character paper.currency had every account event refused (bad_value). Now exit 2. A child's port
    only where that child runs: refused at every load, a live setup's events port equal to the paper terminal's
    default refused `status` and `stop` too (a later review)."""
    result = _cli("config", "show", env={"QT_PAPER__CURRENCY": "Euro-cent-account"})
    assert result.returncode == 2 and "paper.currency: must be at most 16 characters" in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]
    clash = {"QT_PAPER__COMMAND_ENDPOINT": "tcp://127.0.0.1:5557", "QT_DATA_DIR": str(tmp_path / "data")}
    says = "paper.command_endpoint: port 5557 on 127.0.0.1 is taken by endpoints.control"
    for args in (("run", "--paper", "--no-sidecar"), ("paper", "--max-ticks", "1")):
        result = _cli(*args, env=clash)
        assert result.returncode == 2 and says in result.stderr and "Traceback" not in result.stderr, (args, result.stderr[-2000:])
    for args in (("config", "show"), ("status", "--timeout-ms", "200")):  # a command that starts no paper terminal
        result = _cli(*args, env=clash)
        assert "paper.command_endpoint" not in result.stderr and "Traceback" not in result.stderr, (args, result.stderr[-2000:])
    result = _cli("sidecar", "--port", "5557", "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 2 and "sidecar.port: port 5557 on 127.0.0.1 is taken by endpoints.control" in result.stderr, result.stderr[-2000:]


def test_a_config_file_nested_too_deeply_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "deep.toml"
    path.write_text("x = " + "[" * 3000 + "]" * 3000 + "\n")
    result = _cli("config", "show", "--config", str(path))
    assert result.returncode == 2 and "nested too deeply" in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]


def test_cli_bad_value_exits_2_with_the_key_in_the_message(tmp_path: Path) -> None:
    result = _cli("config", "show", env={"QT_SIDECAR__PORT": "0"})
    assert result.returncode == 2
    assert "sidecar.port" in result.stderr and "1-65535" in result.stderr

    path = tmp_path / "bad.toml"
    path.write_text("[daemon]\nstale_heartbeats = 0\n")
    result = _cli("run", "--config", str(path), "--no-sidecar")
    assert result.returncode == 2
    assert "daemon.stale_heartbeats" in result.stderr

    # each of these was a traceback out of `run` (see test_every_numeric_setting_refuses_...)
    for env_name, value in (("QT_DAEMON__EVENTS_HWM", "99999999999999999999"), ("QT_DAEMON__HEALTH_INTERVAL_S", "1e308"), ("QT_FEATURES__WAVE_WINDOW", "1000000000")):
        result = _cli("run", "--no-sidecar", "--paper", env={env_name: value, "QT_DATA_DIR": str(tmp_path / "data")})
        key = env_name[3:].lower().replace("__", ".")
        assert result.returncode == 2 and key in result.stderr and "Traceback" not in result.stderr, (env_name, result.stderr[-2000:])


def test_cli_config_init_then_show_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "qt.toml"
    assert _cli("config", "init", str(path)).returncode == 0
    assert "# heartbeat period" in path.read_text()
    import dataclasses
    import tomllib

    written = tomllib.loads(path.read_text())
    config = load_config(environ={})
    for section in dataclasses.fields(config):
        value = getattr(config, section.name)
        if dataclasses.is_dataclass(value):  # every key of every section written, not left to its default
            assert set(written[section.name]) == {f.name for f in dataclasses.fields(value)}, section.name
    shown = _cli("config", "show", "--config", str(path), env={"QT_SIDECAR__PORT": "9191"})
    assert shown.returncode == 0
    assert "port = 9191" in shown.stdout
    assert _cli("config", "init", str(path)).returncode == 1  # refuses to overwrite


def test_config_show_of_values_with_control_characters_loads_back(tmp_path: Path) -> None:
    """Found by a review (2026-12-05): `config show` escaped only backslash and quote, so a tab or a newline in a
    value (a QT_ variable can hold one) was written as itself, and TOML refuses that: the file did not load."""
    env = {
        "QT_DATA_DIR": str(tmp_path / "tab\there\nnew line"),
        "QT_EXECUTION__DEFAULT_TERMINAL": 'bell\x07 del\x7f esc\x1b cr\r ff\f bs\b "quoted" back\\slash µ€',
        "QT_SIDECAR__CORS_ORIGINS": "https://a.example\t,https://b.example",
    }
    shown = _cli("config", "show", env=env)
    assert shown.returncode == 0, shown.stderr[-2000:]
    path = tmp_path / "shown.toml"
    path.write_text(shown.stdout, encoding="utf-8")
    assert load_config(path, environ={}) == load_config(environ=env)


def test_numba_cache_is_keyed_by_every_kernel_source(tmp_path, monkeypatch) -> None:
    """An edit to any kernel module (not only the one Numba checks) must give a fresh cache directory."""
    import shutil

    from quantumtrader.features import cache

    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    first = cache.ensure_numba_cache_dir(tmp_path / "data")
    assert first.parent == tmp_path / "data" / "numba-cache" and first.name == cache.sources_key() and first.is_dir()
    assert cache.ensure_numba_cache_dir(tmp_path / "data") == first  # idempotent: never nested twice
    # a copy of the package with one inlined helper edited hashes differently
    copy = tmp_path / "pkg" / "quantumtrader"
    for package in ("features", "models"):
        shutil.copytree(Path(cache.__file__).resolve().parents[1] / package, copy / package)
    monkeypatch.setattr(cache, "__file__", str(copy / "features" / "cache.py"))
    same = cache.sources_key()
    policy = copy / "models" / "policy.py"
    policy.write_text(policy.read_text() + "\n# edited\n")
    assert cache.sources_key() != same


def test_the_data_directorys_other_names_are_the_ones_the_modules_use(monkeypatch) -> None:
    """store.file_name is refused on these; the lock, users, secret and cache modules keep their own constants,
    so they are held equal here (the order journal's name is config.ORDERS_FILE itself)."""
    from quantumtrader.config import ORDERS_FILE, OTHER_DATA_NAMES
    from quantumtrader.features.cache import numba_cache_path
    from quantumtrader.sidecar.auth import SECRET_FILE
    from quantumtrader.sidecar.users import USERS_FILE
    from quantumtrader.paper.terminal import PAPER_BOOKS_DIR
    from quantumtrader.store.lock import LOCK_FILE

    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    cache = numba_cache_path(Path("data")).parent.name
    assert set(OTHER_DATA_NAMES) == {ORDERS_FILE, LOCK_FILE, USERS_FILE, SECRET_FILE, cache, PAPER_BOOKS_DIR}


def test_a_numba_cache_cut_by_a_power_cut_is_compiled_afresh_not_a_failed_start(tmp_path: Path) -> None:
    """An index file cut to 0 bytes (a power cut during the first compile) made every start fail inside Numba's
    loader with EOFError ("Aborted.", exit 1) until a person deleted the directory. Costs one kernel's compile."""
    import shutil
    import subprocess
    import sys

    from quantumtrader.features.cache import numba_cache_path

    cache = tmp_path / "numba"
    keyed = numba_cache_path(tmp_path)  # this test session's kernels, compiled already: copied, then cut
    shutil.copytree(Path(os.environ["NUMBA_CACHE_DIR"]), cache / keyed.name, dirs_exist_ok=True)
    script = (
        "import tempfile\n"
        "from quantumtrader.config import load_config\n"
        "from quantumtrader.features.cache import ensure_numba_cache_dir\n"
        "cfg = load_config(environ={'QT_DATA_DIR': tempfile.mkdtemp()})\n"
        "ensure_numba_cache_dir(cfg.data_path)\n"
        "from quantumtrader.models.pipeline import SignalPipeline\n"
        "SignalPipeline(cfg.features, cfg.signals).warm_up()\n"
    )
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("QT_")}, "NUMBA_CACHE_DIR": str(cache)}
    # The directory Numba keeps for this checkout's source file: another checkout's run with the same
    # NUMBA_CACHE_DIR leaves one of its own beside it
    from quantumtrader.features.kernel import update_batch

    own = Path(update_batch.stats.cache_path).name
    # This session has not compiled the feature kernel yet (or the other pytest-xdist worker was compiling it when
    # the cache was copied: the models' index alone was there, and the test failed on a fresh kernel source): once, here
    if not any((cache / keyed.name / own).glob("kernel.update_batch-*.nbi")):
        assert subprocess.run([sys.executable, "-c", script], env=env, timeout=300).returncode == 0
    cut = sorted((cache / keyed.name / own).glob("kernel.update_batch-*.nbi"))  # the feature kernel's: the daemon's first load
    assert len(cut) == 1
    others = {p: p.read_bytes() for p in (cache / keyed.name).rglob("*.nbi") if p != cut[0]}
    cut[0].write_bytes(b"")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Numba cache could not be loaded; deleted and compiling afresh" in result.stdout + result.stderr
    assert cut[0].stat().st_size > 0  # written again
    assert all(p.read_bytes() == body for p, body in others.items())  # only the damaged kernel was compiled again


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_config_file_that_never_ends_or_an_environment_of_other_bytes_is_exit_2_not_a_traceback(tmp_path: Path) -> None:
    """`--config /dev/zero` read until memory ran out (MemoryError); a paper terminal id of Latin-1 bytes in the
    environment was a TypeError from its first event (a review, 2026-12-05)."""
    result = _cli("config", "show", "--config", "/dev/zero")
    assert result.returncode == 2 and "/dev/zero is larger than 1,000,000 bytes: not a config file" in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]
    result = _cli("paper", "--max-ticks", "1", env={"QT_PAPER__TERMINAL": os.fsdecode(b"caf\xe9@X"), "QT_DATA_DIR": str(tmp_path / "data")})
    assert result.returncode == 2 and "paper.terminal: is not valid UTF-8 text" in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]



def test_weights_that_do_not_sum_to_one_say_what_they_sum_to() -> None:
    """The sum was printed with ":g": 1.000000002 read "they sum to 1"."""
    with pytest.raises(ConfigError, match=r"sum to 1\.000000002"):
        load_config(environ={"QT_SIGNALS__WEIGHT_QUANTUM": "0.300000002"})


def test_endpoints_beyond_loopback_load_only_when_allowed() -> None:
    for host in ("127.0.0.1", "127.0.0.2", "localhost", "[::1]", "lo", "ip6-localhost", "[0:0:0:0:0:0:0:1]"):
        assert load_config(environ={"QT_ENDPOINTS__CONTROL": f"tcp://{host}:5557"}).endpoints.control == f"tcp://{host}:5557"
    allowed = load_config(environ={"QT_ENDPOINTS__CONTROL": "tcp://0.0.0.0:5557", "QT_ENDPOINTS__ALLOW_REMOTE": "true"})
    assert allowed.endpoints.control == "tcp://0.0.0.0:5557"


def test_auto_trading_sizes_the_risk_rules_take_load() -> None:
    for lots in ("0", "0.01", "0.07", "5", "1.23", "0.015"):  # the step is the broker's when its terminal sends specs
        assert load_config(environ={"QT_AUTO_TRADE__LOTS": lots}).auto_trade.lots == float(lots)


def test_risk_settings_at_their_edges_load() -> None:
    """One lot size (min = max), no minimum stop, no cap on default stops, a default stop at either end: all usable."""
    edges = {"QT_RISK__LOT_MIN": "0.1", "QT_RISK__LOT_MAX": "0.1", "QT_RISK__MIN_STOP_PCT": "0", "QT_RISK__MAX_DEFAULT_STOP_PCT": "0"}
    assert load_config(environ=edges).risk.lot_max == 0.1
    assert load_config(environ={"QT_RISK__DEFAULT_STOP_PCT": "20", "QT_RISK__MAX_STOP_PCT": "20"}).risk.default_stop_pct == 20
    assert load_config(environ={"QT_RISK__MIN_STOP_PCT": "0.2", "QT_RISK__MAX_DEFAULT_STOP_PCT": "0.2"}).risk.min_stop_pct == 0.2


def test_thresholds_may_reach_one_half_from_either_side() -> None:
    """0.5 itself is HOLD under either threshold (the comparisons are strict), so it may be one of them."""
    assert load_config(environ={"QT_SIGNALS__BUY_THRESHOLD": "0.5"}).signals.buy_threshold == 0.5
    assert load_config(environ={"QT_SIGNALS__SELL_THRESHOLD": "0.5"}).signals.sell_threshold == 0.5
