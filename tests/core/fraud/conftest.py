"""The shop the fraud tests share: a partner at a public mailbox provider and one at their
own domain, a sale reward and a flat lead reward."""
from __future__ import annotations

import pytest

from tests.factories import new_program


@pytest.fixture
def shop(app):
    api = new_program(app)
    api.ann = api.ok("post", "/api/v1/partners", {"name": "Ann Lee", "email": "Ann.Lee@gmail.com",
                                                  "key": "ann"}, 201)
    api.blog = api.ok("post", "/api/v1/partners", {"name": "Ann's Blog",
                                                   "email": "editor@annsblog.example",
                                                   "key": "blog"}, 201)
    api.reward(event="sale", value=10)
    api.reward(event="lead", type="flat", value=200)
    return api
