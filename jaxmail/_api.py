"""The wrapper that turns a kernel into a public function.

A public kernel is compiled once per shape and static configuration (``jax.jit``), so that an
eager call costs one dispatch rather than one per primitive. Before the compiled call, the
arguments are checked eagerly where they are concrete: the game is ONE game (a batch of games is
refused with a message that says to ``jax.vmap``), policies against the game (shapes always;
rows are distributions when the values are known) and player indices. Inside a user's own
``jit``/``vmap`` the wrapper only checks structure and inlines the kernel.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence

import jax

from jaxmail.game import MarkovGame, check_game
from jaxmail.policy import check_player, check_policy


def kernel(
    *, static: Sequence[str] = (), policies: Sequence[str] = ("policy",)
) -> Callable[[Callable], Callable]:
    """Decorator: eager argument checks, then a ``jax.jit`` compiled call.

    Args:
      static: names of static (hashable, structural) arguments, e.g. ``player``, ``method``.
      policies: names of arguments that are policies of the ``game`` argument.
    """

    def decorate(fn: Callable) -> Callable:
        jitted = jax.jit(fn, static_argnames=tuple(static))
        signature = inspect.signature(fn)
        param = signature.parameters.get("game")
        typed = param is not None and param.annotation in ("MarkovGame", MarkovGame)

        @functools.wraps(fn)
        def call(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            arguments = bound.arguments
            game = arguments.get("game")
            if isinstance(game, MarkovGame) or (typed and "game" in arguments):
                check_game(game)  # one MarkovGame, not a batch and not another object
            if game is not None:
                for name in policies:
                    if arguments.get(name) is not None:
                        arguments[name] = check_policy(game, arguments[name], name=name)
                if "player" in arguments:
                    arguments["player"] = check_player(game, arguments["player"])
            return jitted(*bound.args, **bound.kwargs)

        call.__wrapped_kernel__ = fn
        return call

    return decorate
