"""Keras-style optimizer objects: ``Adam(learning_rate=1e-3, clipnorm=1.0)`` and friends.

Each is a description that ``Sequential.compile`` turns into a torch optimizer over the
model's parameters, with Keras' argument names and defaults (note Keras' ``epsilon=1e-7``);
``clipnorm`` / ``clipvalue`` become the Trainer's gradient clipping.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Optimizer:
    learning_rate: float = 1e-3  # step size
    clipnorm: float | None = None  # clip the global gradient norm to this value
    clipvalue: float | None = None  # clip each gradient element to [-clipvalue, clipvalue]

    def build(self, params) -> torch.optim.Optimizer:
        raise NotImplementedError


@dataclass
class Adam(Optimizer):
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7
    amsgrad: bool = False

    def build(self, params):
        return torch.optim.Adam(
            params, lr=self.learning_rate, betas=(self.beta_1, self.beta_2), eps=self.epsilon, amsgrad=self.amsgrad
        )


@dataclass
class AdamW(Adam):
    weight_decay: float = 0.004  # Keras' default

    def build(self, params):
        return torch.optim.AdamW(
            params,
            lr=self.learning_rate,
            betas=(self.beta_1, self.beta_2),
            eps=self.epsilon,
            weight_decay=self.weight_decay,
            amsgrad=self.amsgrad,
        )


@dataclass
class SGD(Optimizer):
    learning_rate: float = 0.01
    momentum: float = 0.0
    nesterov: bool = False

    def build(self, params):
        return torch.optim.SGD(params, lr=self.learning_rate, momentum=self.momentum, nesterov=self.nesterov)


@dataclass
class RMSprop(Optimizer):
    rho: float = 0.9
    momentum: float = 0.0
    epsilon: float = 1e-7

    def build(self, params):
        return torch.optim.RMSprop(
            params, lr=self.learning_rate, alpha=self.rho, momentum=self.momentum, eps=self.epsilon
        )


__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "RMSprop"]
