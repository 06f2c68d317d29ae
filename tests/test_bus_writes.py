"""Writes on a full socket: a service's connection waits for room instead of ending."""

import socket

from dbus_fast.aio import message_bus

from services.bus import PatientSocket


def test_a_full_socket_takes_nothing_and_says_so_instead_of_raising() -> None:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    patient = PatientSocket(ours)
    try:
        while patient.send(b"x" * 65536):  # until the peer's buffer is full
            pass
        assert patient.send(b"more") == 0  # EAGAIN: nothing sent, nothing raised
        theirs.recv(1 << 20)
        assert patient.send(b"more") == 4  # room again
        assert patient.fileno() == ours.fileno()
    finally:
        ours.close()
        theirs.close()


def test_every_dbus_fast_connection_writes_through_it() -> None:
    assert getattr(message_bus._MessageWriter, "_agile_patient", False)
