"""Who a cluster caller is and where their memory goes, without Ray: tokens name people,
a person's second call is refused while the first holds their lock, an unreachable memory
root refuses the call with one line and writes nothing, and the Serve options bound the queue."""

from __future__ import annotations

import pytest

from entropi.config import parse_config
from entropi.service.cluster import Admission, deployment_options
from entropi.transports.websocket.protocol import CallRequest, Refused

ENV = {"ADA_TOKEN": "ada-secret", "BOB_TOKEN": "bob-secret"}


def cfg(tmp_path, root, extra: str = ""):
    return parse_config(
        f"memory:\n  journal_dir: {tmp_path}/journal\n  profile_path: {tmp_path}/p.json\n"
        f"conversation:\n  transcript_file: {tmp_path}/t.txt\n"
        f"cluster:\n  memory_root: {root}\n  users: {{ada: ADA_TOKEN, bob: BOB_TOKEN}}\n"
        + extra)


def test_tokens_name_people_and_their_memory_folders(tmp_path):
    c = cfg(tmp_path, tmp_path / "people")
    (tmp_path / "people").mkdir()
    admit = Admission(c, ENV)
    assert admit.authorized({"token": "bob-secret"}, {})
    assert admit.authorized({}, {"Authorization": "Bearer ada-secret"})
    assert not admit.authorized({"token": "nobody"}, {})
    ada = admit(CallRequest(), {"token": "ada-secret"}, {})
    conv = ada.config(c)
    assert ada.user == "ada"
    assert conv.memory.journal_dir == tmp_path / "people" / "ada" / "journal"
    assert conv.memory.profile_path == tmp_path / "people" / "ada" / "persona_state.json"
    assert conv.conversation.transcript_file == tmp_path / "people" / "ada" / "transcript.txt"
    with pytest.raises(Refused, match="busy: ada is already in a call"):
        admit(CallRequest(), {"token": "ada-secret"}, {})
    admit(CallRequest(), {"token": "bob-secret"}, {}).done()  # others are not held up
    ada.done()  # flushed: she may call again
    admit(CallRequest(), {"token": "ada-secret"}, {}).done()


def test_without_a_root_one_default_person_beside_the_profile(tmp_path):
    c = parse_config(f"memory:\n  journal_dir: {tmp_path}/journal\n"
                     f"  profile_path: {tmp_path}/mem/p.json\n")
    admit = Admission(c, {})
    call = admit(CallRequest(), {}, {})
    assert call.user == "default"
    assert call.config(c).memory.journal_dir == tmp_path / "mem" / "people" / "default" / "journal"
    with pytest.raises(Refused, match="busy: default"):
        admit(CallRequest(), {}, {})  # one person: one call at a time
    call.done()


def test_unreachable_root_refuses_the_call_with_one_line(tmp_path):
    root = tmp_path / "nfs" / "people"  # the share is not mounted
    with pytest.raises(Refused) as err:
        Admission(cfg(tmp_path, root), ENV)(CallRequest(), {"token": "ada-secret"}, {})
    assert "\n" not in str(err.value) and "memory unavailable" in str(err.value)
    assert str(root) in str(err.value)
    assert not (tmp_path / "nfs").exists()


def test_serve_options_one_more_than_the_slots_and_a_bounded_queue(tmp_path):
    opts = deployment_options(cfg(tmp_path, tmp_path, "  replicas: 3\n  num_gpus: 1\n"))
    assert opts["max_ongoing_requests"] == 2 and opts["max_queued_requests"] == 2
    assert opts["num_replicas"] == 3 and opts["ray_actor_options"]["num_gpus"] == 1
    auto = deployment_options(cfg(tmp_path, tmp_path, "  min_replicas: 1\n  max_replicas: 4\n"))
    assert "num_replicas" not in auto
    assert auto["autoscaling_config"]["max_replicas"] == 4
    with pytest.raises(Exception, match="min_replicas"):
        cfg(tmp_path, tmp_path, "  max_replicas: 4\n")
