"""A cluster caller's lock on their memory, without Ray: a person's second call is refused
while the first holds their lock, an unreachable shared folder refuses the call with one line
and writes nothing, and the Serve options bound the queue."""

from __future__ import annotations

import pytest

from entropi.config import parse_config
from entropi.service.cluster import Admission, deployment_options
from entropi.transports.websocket.protocol import CallRequest, Refused


def cfg(tmp_path, users_dir, extra: str = ""):
    return parse_config(
        f"memory:\n  journal_dir: {tmp_path}/mem/journal\n  profile_path: {tmp_path}/mem/p.json\n"
        f"  users_dir: {users_dir}\n"
        f"server:\n  tokens: {{ADA_TOKEN: ada, BOB_TOKEN: bob}}\n"
        f"cluster:\n{extra or '  replicas: 2'}\n")


def test_one_call_per_person_and_the_owner_is_a_person_too(tmp_path):
    (tmp_path / "people").mkdir()
    admit = Admission(cfg(tmp_path, tmp_path / "people"))
    ada = admit(CallRequest(user_id="ada"))
    assert (tmp_path / "people" / "ada" / ".call.lock").is_file()
    assert ada.config(admit.cfg).memory.journal_dir == tmp_path / "people" / "ada" / "journal"
    with pytest.raises(Refused, match="busy: ada is already in a call"):
        admit(CallRequest(user_id="ada"))
    admit(CallRequest(user_id="bob")).done()  # others are not held up
    owner = admit(CallRequest())  # the owner's token: the single-user files, one call too
    assert (tmp_path / "mem" / ".call.lock").is_file()
    with pytest.raises(Refused, match="busy: owner"):
        admit(CallRequest())
    owner.done()
    ada.done()  # flushed: she may call again
    admit(CallRequest(user_id="ada")).done()


def test_unreachable_shared_folder_refuses_the_call_with_one_line(tmp_path):
    share = tmp_path / "nfs" / "people"  # not mounted
    with pytest.raises(Refused) as err:
        Admission(cfg(tmp_path, share))(CallRequest(user_id="ada"))
    assert "\n" not in str(err.value) and "memory unavailable" in str(err.value)
    assert str(share) in str(err.value)
    assert not (tmp_path / "nfs").exists()


def test_serve_options_one_more_than_the_slots_and_a_bounded_queue(tmp_path):
    opts = deployment_options(cfg(tmp_path, tmp_path / "u", "  replicas: 3\n  num_gpus: 1\n"))
    assert opts["max_ongoing_requests"] == 2 and opts["max_queued_requests"] == 2
    assert opts["num_replicas"] == 3 and opts["ray_actor_options"]["num_gpus"] == 1
    auto = deployment_options(cfg(tmp_path, tmp_path / "u",
                                  "  min_replicas: 1\n  max_replicas: 4\n"))
    assert "num_replicas" not in auto
    assert auto["autoscaling_config"]["max_replicas"] == 4
    with pytest.raises(Exception, match="min_replicas"):
        cfg(tmp_path, tmp_path / "u", "  max_replicas: 4\n")
