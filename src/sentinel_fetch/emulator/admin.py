"""The admin endpoint: steer a running emulator over HTTP (``/_emulator/`` on the catalogue host).

Tests in the same process use :class:`~sentinel_fetch.emulator.Emulator` directly; this
endpoint is for the rest: a client under test in another process, a benchmark, the
standalone emulator started with ``python -m sentinel_fetch.emulator``. It answers only
loopback peers, it is not fault-injected, and its requests are not counted in the stats.

================================  ==========================================================
``GET stats``                     counters and recent request events (``?events=N``)
``DELETE stats``                  reset the counters
``GET faults``                    rules still armed, and the faults fired so far
``POST faults``                   add a rule (JSON object) or rules (JSON array);
                                  ``{"kind": "cut", "after_bytes": 1000, "times": 2}``
``DELETE faults``                 remove every rule and stop random faults
``POST faults/randomize``         ``{"rate": 0.1, "kinds": ["cut", "status"], "seed": 7}``
``POST faults/release``           let every stream paused by a ``hold`` rule go on
``GET config``                    the settings that can change at run time
``PATCH config``                  change them: ``{"range_supported": false}``
``POST expire-tokens``            expire every access token (``{"user": …}`` for one user)
``POST end-sessions``             end every session (``{"user": …}`` for one user)
================================  ==========================================================
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from .config import EmulatorConfig
from .faults import FaultPlan, fault_from_dict
from .identity import IdentityProvider
from .model import Request, Response
from .server import Exchange, is_loopback
from .stats import Stats

__all__ = ["ADMIN_PREFIX", "AdminApp"]

#: Path prefix of the admin routes on the catalogue host.
ADMIN_PREFIX = "/_emulator/"


class _AdminError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class AdminApp:
    """Serves the routes in the module docstring.

    Args:
        config: the live configuration (``PATCH config`` changes it in place).
        faults: the live fault plan.
        stats: the live counters.
        identity: token and session table.
    """

    def __init__(
        self,
        *,
        config: EmulatorConfig,
        faults: FaultPlan,
        stats: Stats,
        identity: IdentityProvider,
    ) -> None:
        self._config = config
        self._faults = faults
        self._stats = stats
        self._identity = identity
        self._routes: dict[tuple[str, str], Callable[[Request], Response]] = {
            ("GET", "stats"): self._get_stats,
            ("DELETE", "stats"): self._reset_stats,
            ("GET", "faults"): self._get_faults,
            ("POST", "faults"): self._add_faults,
            ("DELETE", "faults"): self._clear_faults,
            ("POST", "faults/randomize"): self._randomize,
            ("POST", "faults/release"): self._release_holds,
            ("GET", "config"): self._get_config,
            ("PATCH", "config"): self._patch_config,
            ("POST", "expire-tokens"): self._expire_tokens,
            ("POST", "end-sessions"): self._end_sessions,
        }

    def serve(self, exchange: Exchange) -> None:
        """Answer one admin request."""
        exchange.respond(self.handle(exchange.request))

    def handle(self, request: Request) -> Response:
        """The admin answer to a request (pure, for direct use in tests)."""
        if not is_loopback(request.client):
            return Response.json(403, {"error": "the admin endpoint answers loopback only"})
        route = request.path[len(ADMIN_PREFIX) :].strip("/")
        handler = self._routes.get((request.method, route))
        if handler is None:
            known = {path for _, path in self._routes}
            status = 405 if route in known else 404
            return Response.json(status, {"error": f"no route {request.method} {request.path}"})
        try:
            return handler(request)
        except _AdminError as error:
            return Response.json(error.status, {"error": error.message})
        except ValueError as error:
            return Response.json(400, {"error": str(error)})

    def _get_stats(self, request: Request) -> Response:
        query = parse_qs(request.raw_query)
        try:
            events = int(query.get("events", ["100"])[0])
        except ValueError as exc:
            raise _AdminError(400, "events must be an integer") from exc
        return Response.json(200, self._stats.snapshot(events=events))

    def _reset_stats(self, request: Request) -> Response:
        self._stats.reset()
        return Response.json(200, {"reset": True})

    def _get_faults(self, request: Request) -> Response:
        pending = [{**f.to_dict(), "remaining": n} for f, n in self._faults.pending()]
        fired = [
            {
                **f.fault.to_dict(),
                "path": f.path,
                "product_id": f.product_id,
                "random": f.randomized,
            }
            for f in self._faults.fired
        ]
        return Response.json(200, {"faults": pending, "fired": fired})

    def _add_faults(self, request: Request) -> Response:
        payload = _json(request)
        items = payload if isinstance(payload, list) else [payload]
        if not all(isinstance(item, dict) for item in items):
            raise _AdminError(400, "send a fault rule object or an array of them")
        faults = [fault_from_dict(item) for item in items]
        self._faults.extend(faults)
        return Response.json(201, {"faults": [f.to_dict() for f in faults]})

    def _clear_faults(self, request: Request) -> Response:
        count = len(self._faults.pending())
        self._faults.clear()
        return Response.json(200, {"cleared": count})

    def _release_holds(self, request: Request) -> Response:
        self._faults.release_holds()
        return Response.json(200, {"released": True})

    def _randomize(self, request: Request) -> Response:
        payload = _object(request)
        rate = payload.get("rate")
        kinds = payload.get("kinds")
        seed = payload.get("seed", 0)
        if not isinstance(rate, int | float) or isinstance(rate, bool):
            raise _AdminError(400, "rate must be a number in [0, 1]")
        if kinds is not None and (
            not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds)
        ):
            raise _AdminError(400, "kinds must be a list of fault kinds")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise _AdminError(400, "seed must be an integer")
        self._faults.randomize(float(rate), kinds, seed)
        return Response.json(200, {"rate": rate, "kinds": kinds, "seed": seed})

    def _get_config(self, request: Request) -> Response:
        return Response.json(200, self._config.patchable())

    def _patch_config(self, request: Request) -> Response:
        return Response.json(200, self._config.patch(_object(request)))

    def _expire_tokens(self, request: Request) -> Response:
        user = _user(request)
        return Response.json(200, {"expired": self._identity.expire_access_tokens(user)})

    def _end_sessions(self, request: Request) -> Response:
        user = _user(request)
        return Response.json(200, {"ended": self._identity.end_sessions(user)})


def _json(request: Request) -> Any:
    try:
        return json.loads(request.body or b"null")
    except ValueError as exc:
        raise _AdminError(400, f"body is not JSON: {exc}") from exc


def _object(request: Request) -> dict[str, Any]:
    payload = _json(request)
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        raise _AdminError(400, "send a JSON object")
    return payload


def _user(request: Request) -> str | None:
    user = _object(request).get("user")
    if user is not None and not isinstance(user, str):
        raise _AdminError(400, "user must be a string")
    return user
