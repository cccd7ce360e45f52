"""Where the heavy, parallel steps run: in this process (``local``, the default) or on a Ray cluster.

Two primitives are enough for embed, predict and audit:

- ``map(fn, items, shared=...)``: ``[fn(item, **shared) for item in items]``, results in input order;
  ``items`` may be a generator (each item is shipped as it is made, so the driver holds one at a time).
  On Ray each item is one task (retried when its worker dies, ``max_retries``); ``shared`` values are
  put once in the object store and handed to every task without a copy per task.
- ``map_stream(worker_factory, items)``: a stream of items through stateful workers (a model loaded
  once per worker), results yielded in input order while later items are still running. On Ray the
  workers live in one actor per CPU (restarted, and their pending calls retried, when their process
  dies), kept for later streams of the same Ray job; at most ``2 × workers`` items are in flight,
  so a stream of any length needs bounded memory.

``fn`` and ``worker_factory`` must be importable module-level callables (Ray ships them by reference).
The local engine never imports Ray; ``get_engine("ray")`` says how to install it when it is missing.
"""
from __future__ import annotations

import os
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .types import TagwiseError

ENGINES = ("local", "ray")


class LocalEngine:
    """Everything in this process, one item after the other."""

    name = "local"
    workers = 1

    def map(self, fn: Callable, items: Iterable, shared: dict[str, Any] | None = None,
            max_retries: int = 3) -> list:
        shared = shared or {}
        return [fn(item, **shared) for item in items]

    def map_stream(self, worker_factory: Callable, items: Iterable, init: dict[str, Any] | None = None,
                   max_retries: int = 3) -> Iterator:
        worker = worker_factory(**(init or {}))
        for item in items:
            yield worker(item)

    def shutdown(self) -> None:
        pass


class _Host:
    """A Ray actor that keeps its process (and its imports) across streams: per stream token it builds
    ``worker_factory(**init)`` once, on the first item it sees (again after a restart), and drops it at
    the end of the stream."""

    def __init__(self):
        from threadpoolctl import threadpool_limits

        # a host reserves no CPU (so tasks still run while hosts wait between streams): one BLAS
        # thread each, as Ray gives a one-CPU task, or two hosts on one machine would oversubscribe it
        threadpool_limits(1)
        self.workers: dict[str, Any] = {}

    def run(self, token: str, worker_factory, init: dict, item):
        worker = self.workers.get(token)
        if worker is None:
            import ray

            # refs nested in a dict are not resolved by Ray itself
            worker = self.workers[token] = worker_factory(**{k: ray.get(v) if isinstance(v, ray.ObjectRef) else v
                                                             for k, v in init.items()})
        return worker(item)

    def drop(self, token: str) -> None:
        self.workers.pop(token, None)


# the hosts of the running Ray job (a later engine in the same process reuses their warm processes)
_HOSTS: dict[str, list] = {}


class RayEngine:
    """Tasks and actors on a Ray cluster: ``address`` "auto" (a running cluster), "HOST:PORT", or None
    (start a local Ray with ``num_cpus``, or join the one this process already started).

    Workers read and write the project's embedding cache themselves, so on a cluster of several
    machines the project folder (or ``TAGWISE_CACHE_DIR``) must be on a shared filesystem.
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None):
        try:
            import ray
        except ImportError:
            raise TagwiseError("--engine ray needs Ray. Fix: pip install 'tagwise[ray]' (or make test, which "
                               "installs requirements/lock-ray.txt), or use --engine local.") from None
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            if address is None:
                # a local Ray's workers are started from this environment: let them import this tagwise
                src = str(Path(__file__).resolve().parents[1])
                path = os.environ.get("PYTHONPATH", "")
                if src not in path.split(os.pathsep):
                    os.environ["PYTHONPATH"] = src + (os.pathsep + path if path else "")
            try:
                ray.init(address=address, num_cpus=num_cpus if address is None else None,
                         include_dashboard=False, log_to_driver=False, logging_level="ERROR")
            except ConnectionError as exc:
                raise TagwiseError(f"--ray-address {address}: cannot connect to a Ray cluster ({exc}). Fix: start "
                                   f"one (`ray start --head`) or drop --ray-address to run a local Ray.") from None
            self._started = True
        self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))

    def map(self, fn: Callable, items: Iterable, shared: dict[str, Any] | None = None,
            max_retries: int = 3) -> list:
        ray = self._ray
        refs = {k: ray.put(v) for k, v in (shared or {}).items()}
        task = ray.remote(num_cpus=1, max_retries=max_retries)(fn)
        return ray.get([task.remote(item, **refs) for item in items])

    def map_stream(self, worker_factory: Callable, items: Iterable, init: dict[str, Any] | None = None,
                   max_retries: int = 3) -> Iterator:
        import uuid

        ray = self._ray
        init_refs = {k: ray.put(v) for k, v in (init or {}).items()}
        hosts = self._hosts(max_retries)
        token = uuid.uuid4().hex
        pending: deque = deque()
        try:
            for i, item in enumerate(items):
                pending.append(hosts[i % len(hosts)].run.remote(token, worker_factory, init_refs, item))
                if len(pending) >= 2 * len(hosts):
                    yield ray.get(pending.popleft())
            while pending:
                yield ray.get(pending.popleft())
        finally:
            for host in hosts:
                host.drop.remote(token)

    def _hosts(self, max_retries: int) -> list:
        """One host actor per CPU of the cluster (spread over the machines), made once per Ray job and reused."""
        job = self._ray.get_runtime_context().get_job_id()
        if job not in _HOSTS:
            cls = self._ray.remote(num_cpus=0, scheduling_strategy="SPREAD", max_restarts=max_retries,
                                   max_task_retries=max_retries)(_Host)
            _HOSTS.clear()
            _HOSTS[job] = [cls.remote() for _ in range(self.workers)]
        return _HOSTS[job]

    def shutdown(self) -> None:
        if self._started:
            _HOSTS.clear()
            self._ray.shutdown()
            self._started = False


def get_engine(name: str | None = None, address: str | None = None, num_cpus: int | None = None):
    """``local`` or ``ray``; None reads ``TAGWISE_ENGINE`` (default ``local``). ``address`` only for Ray."""
    name = (name or os.environ.get("TAGWISE_ENGINE") or "local").strip().lower()
    if name not in ENGINES:
        raise TagwiseError(f"unknown engine {name!r}. Fix: --engine local or --engine ray (or TAGWISE_ENGINE).")
    if name == "local":
        if address:
            raise TagwiseError("--ray-address needs --engine ray (or TAGWISE_ENGINE=ray).")
        return LocalEngine()
    return RayEngine(address=address, num_cpus=num_cpus)
