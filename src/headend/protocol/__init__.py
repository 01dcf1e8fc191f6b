"""DLMS/COSEM client sessions driven from asyncio.

Layers, bottom up: ``streams`` (TCP, serial port) → ``transports`` (TCP wrapper, HDLC with
``hdlc``/``hdlc_link``) → ``association`` (ACSE, HLS-GMAC, ciphering with ``security``) →
``session`` (``async with MeterSession``: GET/SET/ACTION over ``xdlms``) → readers
(``registers``, ``buffers``, ``collect``) that return ``headend.domain.readings`` values.
Failures are ``errors.ProtocolError`` subclasses, one ``FailureCategory`` each.
"""
