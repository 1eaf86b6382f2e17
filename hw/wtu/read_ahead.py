"""Synchronous memory reads that deliver a word in the cycle its address is current (read-ahead).

A memory read synchronously (``lib.memory`` read port in the ``sync`` domain) is what becomes an
SRAM macro or a block RAM: the macro registers its output, so the word of an address presented
in cycle ``t`` appears in cycle ``t + 1``. The WTU's parts present the address a register *will
hold* in the next cycle (its next value, computed combinationally), so the word appears exactly
when the register holds that address, as an asynchronous read of the register would give it;
the cycle counts of the unit do not change.

One corner differs from an asynchronous read: a write in cycle ``t`` to the address read ahead
in cycle ``t`` (the register keeps its address across a write) is not seen by the macro's read
of that edge. A one-word forwarding register covers it: when the write port writes the address
being read, the written word is delivered instead of the macro's output.

An FPGA build declares the read port transparent for the write port instead (``transparent``):
the same words at the port, and the block RAM flow builds the bypass itself. A port that is not
transparent costs an FPGA more: a block RAM's two ports give no defined word when one reads the
address the other writes, so Yosys keeps the old word by delaying every write a cycle and
bypassing the delayed write, a comparison behind the read-ahead address. A memory whose users
never take that word (``forward`` false) needs neither: an FPGA build reads it asynchronously
into a register without reset, which Yosys merges into the block RAM's port, and gives the
memory the ``no_rw_check`` attribute (:data:`NO_RW_CHECK`), which tells Yosys that the word of
a read at the address being written may be undefined, so no bypass is built.

The bypass Yosys builds for a transparent port compares the write address with the read
address, which behind the read-ahead is the next address's multiplexer. A memory whose writes
come only in cycles where a simpler signal equals the read address (``forward_address``) is
read on an FPGA like one that needs no forwarding, and takes the forwarding register of the
silicon form, compared with that signal: the same words, with the comparison off the read
address's path (on the edge WTU that bypass was the critical path of two of three routed runs).
"""

from amaranth.hdl import Mux, Signal

__all__ = ["NO_RW_CHECK", "read_ahead"]

#: The attribute of a ``lib.memory.Memory`` that tells Yosys a read at the address being written
#: may give any word (its ``memory_dff`` then builds no bypass for that collision).
NO_RW_CHECK = {"no_rw_check": 1}


def read_ahead(m, memory, name, forward=True, forward_address=None, transparent=False,
               poison=False):
    """Add a synchronous read port with write forwarding and a write port to ``memory``.

    Parameters
    ----------
    m : Module
        The module the forwarding logic goes into.
    memory : amaranth.lib.memory.Memory
        A memory with no ports yet (already a submodule of ``m``).
    name : str
        Prefix of the forwarding registers' names.
    forward : bool
        Add the forwarding register (False: ``data`` is the macro's output, for a memory whose
        users never read an address in the cycle after it was written).
    forward_address : Value, optional
        The address the write's is compared with for forwarding, instead of ``read.addr``:
        a signal equal to the read address in every cycle the memory is written, and
        computed with less logic (the read address may be a multiplexer of sources that
        are never selected while the memory is written).
    transparent : bool
        An FPGA build: without ``forward_address``, declare the read port transparent for the
        write port (``transparent_for``) and add no forwarding register, the same words in
        every cycle the unit uses them; with it, or without ``forward``, read asynchronously
        into a register without reset and give the memory :data:`NO_RW_CHECK` (in simulation
        a read of the address written gives the old word), and with ``forward`` add the
        forwarding register compared with ``forward_address``.
    poison : bool
        With ``transparent`` and without ``forward``: give the word of a read at the address
        written inverted (:func:`hw.component.poisons_undefined_reads`).

    Returns
    -------
    read, write, data
        The read port (drive ``read.addr`` with the *next* cycle's address), the write port
        (drive ``addr``, ``data``, ``en``), and ``data``: the word at the address presented in
        the previous cycle, including a write of that cycle to it.
    """
    if transparent and forward and forward_address is None:
        write = memory.write_port()
        read = memory.read_port(domain="sync", transparent_for=(write,))
        return read, write, read.data
    if transparent:
        # An asynchronous read registered without reset: Yosys merges the register into the
        # block RAM's synchronous port, with no bypass for the collision (module doc).
        memory.attrs.update(NO_RW_CHECK)
        write = memory.write_port()
        read = memory.read_port(domain="comb")
        data = Signal.like(read.data, name=f"{name}_word", reset_less=True)
        m.d.sync += data.eq(read.data)
        if forward:
            return read, write, _forwarded(m, name, write, forward_address, data)
        if not poison:
            return read, write, data
        collided = Signal(name=f"{name}_collided")
        m.d.sync += collided.eq(write.en.any() & (write.addr == read.addr))
        return read, write, Mux(collided, ~data, data)
    read, write = memory.read_port(domain="sync"), memory.write_port()
    if not forward:
        return read, write, read.data
    compared = read.addr if forward_address is None else forward_address
    return read, write, _forwarded(m, name, write, compared, read.data)


def _forwarded(m, name, write, compared, word):
    """``word``, or the word ``write`` wrote in the previous cycle when it wrote ``compared``."""
    forward = Signal(name=f"{name}_forward")
    forward_data = Signal.like(write.data, name=f"{name}_forward_data")
    data = Signal.like(word, name=f"{name}_data")
    m.d.sync += [forward.eq(write.en.any() & (write.addr == compared)),
                 forward_data.eq(write.data)]
    m.d.comb += data.eq(Mux(forward, forward_data, word))
    return data
