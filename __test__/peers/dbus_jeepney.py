"""A D-Bus client nobody here wrote the wire of: jeepney calls the fdpass
service's Swap(h) -> h through a real dbus-daemon with UNIX_FD negotiated,
sending an fd of a file it made and reading the fd it gets back.

Usage: dbus_jeepney.py BUS_ADDRESS TEXT. Prints one JSON line: the text read
from the returned fd and the fd audit."""

import json
import os
import sys
import tempfile

from jeepney import DBusAddress, FileDescriptor, new_method_call
from jeepney.io.blocking import open_dbus_connection

from fdaudit import open_fds


def main():
    address, text = sys.argv[1], sys.argv[2]
    before = open_fds()
    result = {}
    with tempfile.TemporaryFile() as f:
        f.write(text.encode())
        f.flush()
        with open_dbus_connection(address, enable_fds=True) as conn:
            target = DBusAddress("/org/fdpass/Test", bus_name="org.fdpass.Test", interface="org.fdpass.Test")
            reply = conn.send_and_get_reply(new_method_call(target, "Swap", "h", (f.fileno(),)), timeout=10)
            (returned,) = reply.body
            assert isinstance(returned, FileDescriptor), type(returned)
            with returned.to_file("rb") as back:
                result["text"] = back.read().decode()
    after = open_fds()
    result["fd_audit_ok"] = after == before
    result["fds_before"] = before
    result["fds_after"] = after
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
