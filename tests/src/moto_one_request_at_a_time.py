"""moto_server, answering one request at a time.

DynamoDB applies each UpdateItem atomically (an ADD never loses a concurrent ADD, a
condition is checked against the item it writes), and SQS hands a message to one receiver.
moto_server answers on many threads and does neither: its backends read, change and write
Python objects without a lock, so two concurrent ADDs to one item can count once. The
conformance suites check exactly those guarantees, so the harness serialises requests here.
Every request is short (the tests never long-poll), and moto holds the GIL while it works,
so little is lost.

Usage is moto_server's own: python moto_one_request_at_a_time.py -H 127.0.0.1 -p PORT
"""

import threading

import moto.server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication


class OneRequestAtATime(DomainDispatcherApplication):
    _lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self._lock:
            response = super().__call__(environ, start_response)
            try:
                # The body is produced while the lock is held, not after it is released.
                return [b"".join(response)]
            finally:
                close = getattr(response, "close", None)
                if close is not None:
                    close()


moto.server.DomainDispatcherApplication = OneRequestAtATime

if __name__ == "__main__":
    moto.server.main()
