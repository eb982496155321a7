"""deploy/: the compose file, the Dockerfile, gunicorn's and Celery's configuration, the
systemd units and docs/deployment.md, checked against the code they start.

No container runtime and no network: the files are parsed, every command they name is
resolved (Django management commands and their flags, the Celery app, gunicorn's settings)
and the operational promises (graceful stop windows, users, healthchecks) are asserted.
"""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings
from django.core.management import CommandError, get_commands, load_command_class
from gunicorn.config import Config as GunicornConfig

from scheduled_tasks.daemon import DEFAULT_SHUTDOWN_TIMEOUT_SECONDS
from ticketproo.env import env_bool

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SYSTEMD = DEPLOY / "systemd"
DOCS = ROOT / "docs" / "deployment.md"
UNITS = {
    "web": SYSTEMD / "ticketproo-web.service",
    "scheduler": SYSTEMD / "ticketproo-scheduler.service",
    "worker": SYSTEMD / "ticketproo-worker.service",
    "worker@": SYSTEMD / "ticketproo-worker@.service",
}
SERVICES = ("db", "redis", "migrate", "web", "scheduler", "worker")
LONG_RUNNING = ("db", "redis", "web", "scheduler", "worker")
# The pools Celery offers that cannot fork a sandbox child per run with its own rlimits.
NON_FORKING_POOLS = {"solo", "threads", "gevent", "eventlet"}


# --- parsing helpers -----------------------------------------------------------------------


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def service(name: str) -> dict[str, Any]:
    return compose()["services"][name]


def split_shell(script: str) -> list[list[str]]:
    """The simple commands of a ``sh -c`` script joined by ``&&`` or ``;``, ``exec`` dropped."""
    commands = []
    for part in re.split(r"&&|;", script):
        words = shlex.split(part)
        if words and words[0] == "exec":
            words = words[1:]
        if words:
            commands.append(words)
    return commands


def commands_of(value: Any) -> list[list[str]]:
    """A compose ``command`` or healthcheck ``test`` as the argv of each command it runs."""
    if value is None:
        return []
    if isinstance(value, str):
        value = shlex.split(value.replace("$$", "$"))
    words = [str(word).replace("$$", "$") for word in value]
    if words[:1] in (["CMD"],):
        words = words[1:]
    if words[:1] == ["CMD-SHELL"]:
        return split_shell(" ".join(words[1:]))
    if words[:2] == ["sh", "-c"]:
        return split_shell(words[2])
    return [words]


def service_commands(name: str) -> list[list[str]]:
    spec = service(name)
    found = commands_of(spec.get("command"))
    if "healthcheck" in spec:
        found += commands_of(spec["healthcheck"]["test"])
    return found


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined: list[str] = []
    pending = ""
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        joined.append(pending + stripped)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    result = []
    for text in joined:
        instruction, _, arguments = text.partition(" ")
        result.append((instruction.upper(), arguments.strip()))
    return result


def dockerfile_commands() -> list[list[str]]:
    found: list[list[str]] = []
    for instruction, arguments in dockerfile_instructions():
        if instruction == "RUN":
            found += split_shell(arguments)
        elif instruction in {"CMD", "ENTRYPOINT"}:
            found.append(yaml.safe_load(arguments))  # the JSON (exec) form
    return found


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(UNITS[name].read_text())
    return parser


def unit_values(name: str, key: str) -> list[str]:
    """Every value of a key a unit may repeat (Environment=, EnvironmentFile=)."""
    prefix = f"{key}="
    return [
        line[len(prefix) :]
        for line in UNITS[name].read_text().splitlines()
        if line.startswith(prefix)
    ]


def unit_commands(name: str) -> list[list[str]]:
    return [shlex.split(unit(name)["Service"]["ExecStart"])]


def all_commands() -> list[list[str]]:
    found = [words for name in SERVICES for words in service_commands(name)]
    found += dockerfile_commands()
    found += [words for name in UNITS for words in unit_commands(name)]
    return found


def manage_py_calls(commands: list[list[str]]) -> list[tuple[str, list[str]]]:
    calls = []
    for words in commands:
        for i, word in enumerate(words):
            if word.endswith("manage.py") and i + 1 < len(words):
                calls.append((words[i + 1], words[i + 2 :]))
    return calls


def seconds(duration: str | int) -> float:
    """A compose duration ("90s", "1m30s") or a systemd time span ("90", "90s", "2min")."""
    text = str(duration).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    units = {"h": 3600, "min": 60, "m": 60, "s": 1, "ms": 0.001}
    total = 0.0
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|min|h|m|s)", text)
    assert "".join(n + u for n, u in parts) == text, f"cannot read duration {text!r}"
    for number, unit_name in parts:
        total += float(number) * units[unit_name]
    return total


def flag_value(words: list[str], flag: str) -> str | None:
    for i, word in enumerate(words):
        if word == flag and i + 1 < len(words):
            return words[i + 1]
        if word.startswith(flag + "="):
            return word[len(flag) + 1 :]
    return None


def shell_default(value: str) -> str:
    """``${NAME:-default}`` -> default; anything else unchanged."""
    match = re.fullmatch(r"\$\{[A-Z_]+:-([^}]*)\}", value)
    return match.group(1) if match else value


def env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"{path.name}: not KEY=value: {line!r}"
            values[name.strip()] = value.strip()
    return values


def celery_worker_commands(commands: list[list[str]]) -> list[list[str]]:
    return [words for words in commands if "worker" in words and Path(words[0]).name == "celery"]


# --- compose.yaml --------------------------------------------------------------------------


def test_compose_has_every_service_with_a_pinned_image_or_the_project_build():
    services = compose()["services"]
    assert set(SERVICES) <= set(services)
    assert services["db"]["image"].startswith("postgres:15")
    assert services["redis"]["image"].startswith("redis:7")
    for name in ("migrate", "web", "scheduler", "worker"):
        assert services[name]["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (DEPLOY / services[name]["build"]["context"] / "manage.py").is_file()
    for name, spec in services.items():
        image = spec["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: unpinned {image!r}"


def test_web_runs_gunicorn_with_the_config_file_and_no_embedded_scheduler():
    web = service("web")
    (words,) = commands_of(web["command"])
    assert words[0] == "gunicorn"
    config = flag_value(words, "--config") or flag_value(words, "-c")
    assert config == "deploy/gunicorn.conf.py"
    assert (ROOT / config).is_file()
    assert words[-1] == "ticketproo.wsgi:application"
    assert env_bool_value(web["environment"]["SCHEDULED_TASKS_EMBEDDED"]) is False


def env_bool_value(raw: Any) -> bool:
    """What the settings make of this environment value (ticketproo.env.env_bool)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEPLOYMENT_TEST_VALUE", str(raw))
        return env_bool("DEPLOYMENT_TEST_VALUE", True)


def test_scheduler_runs_the_daemon_with_the_celery_backend_as_one_replica():
    scheduler = service("scheduler")
    (words,) = commands_of(scheduler["command"])
    assert words[:4] == ["python", "manage.py", "run_scheduled_tasks", "--daemon"]
    assert scheduler["environment"]["SCHEDULED_TASKS_BACKEND"] == "celery"
    assert env_bool_value(scheduler["environment"]["SCHEDULED_TASKS_EMBEDDED"]) is False
    assert scheduler.get("deploy", {}).get("replicas", 1) == 1


def test_scheduler_is_given_longer_to_stop_than_its_shutdown_timeout():
    scheduler = service("scheduler")
    (words,) = commands_of(scheduler["command"])
    given = flag_value(words, "--shutdown-timeout")
    shutdown = float(given) if given is not None else DEFAULT_SHUTDOWN_TIMEOUT_SECONDS
    assert scheduler.get("stop_signal", "SIGTERM") == "SIGTERM"
    assert seconds(scheduler["stop_grace_period"]) > shutdown
    assert seconds(scheduler["stop_grace_period"]) > DEFAULT_SHUTDOWN_TIMEOUT_SECONDS


def test_worker_runs_the_celery_app_with_a_forking_pool_on_the_default_queue():
    worker = service("worker")
    (words,) = commands_of(worker["command"])
    assert words[:4] == ["celery", "-A", "ticketproo", "worker"]
    pool = flag_value(words, "--pool") or flag_value(words, "-P") or "prefork"
    assert pool not in NON_FORKING_POOLS
    queues = shell_default(flag_value(words, "--queues") or flag_value(words, "-Q") or "")
    assert settings.CELERY_TASK_DEFAULT_QUEUE in queues.split(",")
    assert "deploy" not in worker or "replicas" not in worker["deploy"]  # scaled with --scale
    assert env_file(DEPLOY / "celery.env")["CELERY_WORKER_QUEUES"].split(",") == [
        settings.CELERY_TASK_DEFAULT_QUEUE
    ]
    # The worker reads its options from celery.env, after .env.
    assert "celery.env" in worker["env_file"]


def test_the_celery_app_named_by_every_worker_command_imports():
    import ticketproo.celery

    commands = celery_worker_commands(all_commands())
    assert commands, "no celery worker command found"
    for words in commands:
        assert flag_value(words, "-A") == "ticketproo"
    assert ticketproo.celery.app.main == "ticketproo"
    assert ticketproo.celery.app.conf.task_acks_late is True


def test_celery_settings_the_docs_promise():
    # docs/deployment.md explains each; a change here must change the docs too.
    assert settings.CELERY_TASK_ACKS_LATE is True
    assert settings.CELERY_TASK_REJECT_ON_WORKER_LOST is True
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] > 24 * 3600
    assert settings.CELERY_ACCEPT_CONTENT == ["json"]
    text = DOCS.read_text()
    for name in (
        "CELERY_TASK_ACKS_LATE",
        "CELERY_TASK_REJECT_ON_WORKER_LOST",
        "CELERY_WORKER_PREFETCH_MULTIPLIER",
        "visibility_timeout",
        "CELERY_ACCEPT_CONTENT",
        "CELERY_TASK_DEFAULT_QUEUE",
    ):
        assert name in text, f"docs/deployment.md does not explain {name}"


def test_long_running_services_restart_and_have_healthchecks():
    services = compose()["services"]
    for name in LONG_RUNNING:
        assert services[name]["restart"] in {"always", "unless-stopped"}, name
    assert services["migrate"]["restart"] == "no"
    for name in ("db", "redis", "web", "worker"):
        assert services[name]["healthcheck"]["test"], name
    web_check = commands_of(services["web"]["healthcheck"]["test"])
    assert any(words[-1].endswith("/health/") for words in web_check)
    for words in web_check:
        if words[:1] == ["python"]:
            assert (ROOT / words[1]).is_file()
    (ping,) = commands_of(services["worker"]["healthcheck"]["test"])
    assert ping[:5] == ["celery", "-A", "ticketproo", "inspect", "ping"]
    if "scheduler_status" in get_commands():
        scheduler_check = commands_of(services["scheduler"]["healthcheck"]["test"])
        assert ["scheduler_status"] in [words[2:3] for words in scheduler_check]


def test_services_wait_for_their_dependencies():
    services = compose()["services"]
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    for name in ("web", "scheduler", "worker"):
        depends = services[name]["depends_on"]
        assert depends["db"]["condition"] == "service_healthy"
        assert depends["migrate"]["condition"] == "service_completed_successfully"
    for name in ("scheduler", "worker"):
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_migrate_job_migrates_then_syncs_the_sandbox_role():
    commands = service_commands("migrate")
    names = [command for command, _ in manage_py_calls(commands)]
    assert names == ["migrate", "sync_sandbox_role"]


def test_runners_run_as_root_with_only_the_capabilities_the_sandbox_needs():
    for name in ("scheduler", "worker"):
        spec = service(name)
        assert str(spec["user"]).split(":")[0] in {"0", "root"}
        assert spec["cap_drop"] == ["ALL"]
        assert {"SETUID", "SETGID", "KILL"} <= set(spec["cap_add"])
        assert "SYS_ADMIN" not in spec["cap_add"]
    assert "user" not in service("web")  # the image's unprivileged user


def test_redis_persists_and_never_evicts_queued_messages():
    words = [str(word) for word in service("redis")["command"]]
    assert flag_value(words, "--appendonly") == "yes"
    assert flag_value(words, "--maxmemory-policy") == "noeviction"
    assert any(volume.endswith(":/data") for volume in service("redis")["volumes"])


def test_every_variable_compose_interpolates_is_documented_in_env_example():
    text = (DEPLOY / "compose.yaml").read_text().replace("$$", "")
    names = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))
    documented = env_example_names()
    assert names, "compose interpolates nothing?"
    assert names <= documented, f"missing from env.example: {sorted(names - documented)}"


# --- manage.py commands and their flags ----------------------------------------------------


def test_every_management_command_named_in_deployment_files_exists_and_takes_its_flags():
    calls = manage_py_calls(all_commands())
    names = {name for name, _ in calls}
    assert {"migrate", "sync_sandbox_role", "collectstatic", "run_scheduled_tasks"} <= names
    available = get_commands()
    for name, args in calls:
        assert name in available, f"manage.py {name}: no such command"
        command = load_command_class(available[name], name)
        parser = command.create_parser("manage.py", name)
        parser.parse_args(args)  # raises CommandError on a flag the command does not accept


def test_management_commands_named_in_the_docs_exist():
    text = DOCS.read_text()
    named = set(re.findall(r"manage\.py ([a-z_]+)", text))
    assert "run_scheduled_tasks" in named
    missing = named - set(get_commands())
    assert not missing, f"docs/deployment.md names missing commands: {sorted(missing)}"


def test_run_scheduled_tasks_rejects_an_unknown_flag():
    # The check above relies on parse_args refusing what the parser does not know.
    parser = load_command_class("scheduled_tasks", "run_scheduled_tasks").create_parser(
        "manage.py", "run_scheduled_tasks"
    )
    with pytest.raises((SystemExit, CommandError)):
        parser.parse_args(["--daemon", "--no-such-flag"])


# --- gunicorn.conf.py ----------------------------------------------------------------------


def gunicorn_settings(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    for name in ("WEB_CONCURRENCY", "GUNICORN_BIND", "GUNICORN_LOGLEVEL", "FORWARDED_ALLOW_IPS"):
        monkeypatch.delenv(name, raising=False)
    namespace: dict[str, Any] = {"__file__": str(DEPLOY / "gunicorn.conf.py")}
    exec(compile((DEPLOY / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), namespace)  # noqa: S102
    return {k: v for k, v in namespace.items() if not k.startswith("_") and k.islower()}


def test_gunicorn_config_loads_with_three_workers_and_no_scheduler(monkeypatch):
    values = gunicorn_settings(monkeypatch)
    assert values["workers"] == 3
    assert values["preload_app"] is False
    assert values["accesslog"] == "-"
    assert "SCHEDULED_TASKS_EMBEDDED=false" in values["raw_env"]
    config = GunicornConfig()
    for key, value in values.items():
        if key in config.settings:
            config.set(key, value)  # validates the type, as gunicorn does on load
    assert config.workers == 3
    assert config.env == {"SCHEDULED_TASKS_EMBEDDED": "false"}
    # Shorter than the stop windows the compose file and the unit give the web server.
    assert config.graceful_timeout < seconds(service("web")["stop_grace_period"])
    assert config.graceful_timeout < seconds(unit("web")["Service"]["TimeoutStopSec"])


def test_gunicorn_workers_follow_web_concurrency(monkeypatch):
    values = gunicorn_settings(monkeypatch)
    monkeypatch.setenv("WEB_CONCURRENCY", "5")
    namespace: dict[str, Any] = {}
    exec(compile((DEPLOY / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), namespace)  # noqa: S102
    assert (values["workers"], namespace["workers"]) == (3, 5)


# --- Dockerfile ----------------------------------------------------------------------------


def test_dockerfile_builds_on_python_311_slim_and_installs_the_requirements():
    instructions = dockerfile_instructions()
    froms = [arguments for instruction, arguments in instructions if instruction == "FROM"]
    assert froms and all(image.startswith("python:3.11") for image in froms)
    for image in froms:
        assert ":" in image and "latest" not in image
    runs = " ; ".join(arguments for instruction, arguments in instructions if instruction == "RUN")
    assert re.search(r"pip install (.* )?-r \S*requirements\.txt", runs)
    assert "libseccomp2" in runs
    assert "rm -rf /var/lib/apt/lists" in runs
    copies = [arguments for instruction, arguments in instructions if instruction == "COPY"]
    assert any(arguments.startswith("requirements.txt ") for arguments in copies)


def test_dockerfile_collects_static_files_and_ends_unprivileged():
    instructions = dockerfile_instructions()
    calls = manage_py_calls(dockerfile_commands())
    assert ("collectstatic", ["--noinput", "--verbosity", "0"]) in calls
    users = [arguments for instruction, arguments in instructions if instruction == "USER"]
    assert users and users[-1] not in {"root", "0"}
    env = " ".join(arguments for instruction, arguments in instructions if instruction == "ENV")
    assert "SCHEDULED_TASKS_EMBEDDED=false" in env
    (cmd,) = [arguments for instruction, arguments in instructions if instruction == "CMD"]
    assert yaml.safe_load(cmd)[:3] == ["gunicorn", "--config", "deploy/gunicorn.conf.py"]


def test_docker_build_context_leaves_out_local_state():
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    for pattern in (".venv", ".git", "db.sqlite3*", ".env", "staticfiles", "node_modules"):
        assert pattern in ignored


# --- systemd units -------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(UNITS))
def test_systemd_unit_is_complete(name):
    parsed = unit(name)
    assert {"Unit", "Service", "Install"} <= set(parsed.sections())
    service_section = parsed["Service"]
    assert service_section["Restart"] in {"always", "on-failure"}
    assert service_section["KillSignal"] == "SIGTERM"
    assert service_section["WorkingDirectory"] == "/opt/ticketproo"
    assert "/etc/ticketproo/ticketproo.env" in unit_values(name, "EnvironmentFile")
    assert parsed["Install"]["WantedBy"] == "multi-user.target"
    assert "SCHEDULED_TASKS_EMBEDDED=false" in unit_values(name, "Environment")
    # The runner follows its sandbox processes through /proc: hiding it breaks that.
    for key in ("ProtectProc", "ProcSubset", "MemoryDenyWriteExecute"):
        assert key not in service_section, f"{name}: {key}= would break the sandbox"


def test_web_unit_runs_gunicorn_unprivileged():
    parsed = unit("web")["Service"]
    (words,) = unit_commands("web")
    assert words[0].endswith("/gunicorn")
    assert flag_value(words, "--config") == "deploy/gunicorn.conf.py"
    assert words[-1] == "ticketproo.wsgi:application"
    assert parsed["User"] == "ticketproo"


def test_scheduler_unit_runs_the_daemon_and_outlasts_its_shutdown_timeout():
    parsed = unit("scheduler")["Service"]
    (words,) = unit_commands("scheduler")
    assert words[1:4] == ["manage.py", "run_scheduled_tasks", "--daemon"]
    given = flag_value(words, "--shutdown-timeout")
    shutdown = float(given) if given is not None else DEFAULT_SHUTDOWN_TIMEOUT_SECONDS
    assert seconds(parsed["TimeoutStopSec"]) > max(shutdown, DEFAULT_SHUTDOWN_TIMEOUT_SECONDS)
    assert parsed["KillMode"] == "mixed"


@pytest.mark.parametrize("name", ["worker", "worker@"])
def test_worker_units_run_celery_and_stop_warmly(name):
    parsed = unit(name)["Service"]
    (words,) = unit_commands(name)
    assert Path(words[0]).name == "celery"
    assert words[1:4] == ["-A", "ticketproo", "worker"]
    assert (flag_value(words, "--pool") or "prefork") not in NON_FORKING_POOLS
    assert parsed["KillMode"] == "mixed"
    assert seconds(parsed["TimeoutStopSec"]) > DEFAULT_SHUTDOWN_TIMEOUT_SECONDS
    assert "-/etc/ticketproo/celery.env" in unit_values(name, "EnvironmentFile")
    if name == "worker@":
        assert "%i" in flag_value(words, "--hostname")


@pytest.mark.parametrize("name", ["scheduler", "worker", "worker@"])
def test_root_runner_units_keep_the_capabilities_of_the_uid_drop_only(name):
    parsed = unit(name)["Service"]
    assert parsed["User"] == "root"
    caps = set(parsed["CapabilityBoundingSet"].split())
    assert {"CAP_SETUID", "CAP_SETGID", "CAP_KILL"} <= caps
    assert not caps & {"CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_NET_ADMIN"}
    # no_new_privs is compatible with the drop (the sandbox sets it itself before it).
    assert parsed["NoNewPrivileges"] == "yes"


# --- env.example, celery.env ---------------------------------------------------------------


def env_example_names() -> set[str]:
    text = (DEPLOY / "env.example").read_text()
    return set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def variables_read_by_settings() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "ticketproo" / "settings.py", ROOT / "scheduled_tasks" / "conf.py"):
        text = path.read_text()
        names |= set(re.findall(r"env_(?:str|bool|list|int|float)\(\s*[\"']([A-Z0-9_]+)", text))
        names |= set(re.findall(r"os\.environ(?:\.get\(|\[)\s*[\"']([A-Z0-9_]+)", text))
        names |= set(re.findall(r"os\.getenv\(\s*[\"']([A-Z0-9_]+)", text))
    return names


def test_env_example_lists_every_variable_the_settings_read():
    read = variables_read_by_settings()
    assert {"DATABASE_URL", "SECRET_KEY", "CELERY_BROKER_URL"} <= read
    missing = read - env_example_names()
    assert not missing, f"deploy/env.example lacks {sorted(missing)}"


def test_env_example_holds_no_secret():
    values = env_file(DEPLOY / "env.example")
    for name, value in values.items():
        if re.search(r"SECRET|PASSWORD|TOKEN|_KEY$", name):
            assert value == "", f"{name} has a value in env.example"
        # A URL with a password in it.
        assert not re.search(r"://[^/@:]*:[^/@]+@", value), f"{name} holds a password"
    commented = (DEPLOY / "env.example").read_text()
    for url in re.findall(r"\w+://\S+", commented):
        match = re.search(r"://[^/@:]*:([^/@]+)@", url)
        assert match is None or match.group(1) == "<password>", url


def test_celery_env_sets_the_worker_options_the_commands_use():
    values = env_file(DEPLOY / "celery.env")
    assert values["CELERY_BROKER_URL"].startswith("redis://")
    assert int(values["CELERY_WORKER_CONCURRENCY"]) >= 1
    assert values["CELERY_WORKER_LOGLEVEL"] in {"DEBUG", "INFO", "WARNING", "ERROR"}
    for words in celery_worker_commands(all_commands()):
        text = " ".join(words)
        for name in ("CELERY_WORKER_CONCURRENCY", "CELERY_WORKER_QUEUES", "CELERY_WORKER_LOGLEVEL"):
            assert name in text


# --- docs/deployment.md --------------------------------------------------------------------


def test_deployment_docs_cover_every_service_mode_and_what_was_validated():
    text = DOCS.read_text()
    for name in compose()["services"]:
        assert f"`{name}`" in text, f"docs/deployment.md does not mention service {name}"
    for mode in ("embedded", "daemon", "cron", "daemon + workers"):
        assert mode in text.lower()
    for phrase in ("--scale worker=", "SIGTERM", "LEASE_SECONDS", "docker info", "prefork"):
        assert phrase in text
    for path in (*UNITS.values(), DEPLOY / "gunicorn.conf.py", DEPLOY / "celery.env"):
        assert str(path.relative_to(ROOT)) in text
