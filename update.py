# update.py: applies a ROMFS image that `upynode deploy` staged, and takes
# it back if it does not work (issue 19). boot.py imports it, before
# anything is imported from /rom, only when romfs.new or romfs.trial is
# there. romfs.new: the new image, sent in small chunks and checked by its
# sha256 on the board before it got that name. apply() writes the partition
# from it with one 512-byte buffer, checks what the partition then holds,
# keeps the image it replaces as romfs.old, and restarts into the new one.
# A power cut anywhere leaves romfs.new in place: the next boot starts over.
# romfs.trial: deploy puts the new image on trial; every boot counts, and
# the node removes the file once a sink acknowledged a reading (node.py).
# A node that delivers nothing for its time on trial (the file's second
# number, TRIAL_S without one) restarts, and that boot counts too.
# TRIAL_BOOTS boots without a reading (a crash loop, an import error that
# resets, a broker it no longer reaches) and the image in romfs.old is
# staged and applied in its place.
# It stays a source file beside boot.py, never in the image it rewrites.
import os

NEW = "romfs.new"
OLD = "romfs.old"
# Present while the partition is being written: its image is not whole, so
# a boot that finds it keeps the romfs.old it has rather than save a torn one.
WRITING = "romfs.writing"
CHUNK = 512
HEADER = b"\xd2\xcd\x31"
TRIAL = "romfs.trial"  # "<boots the image on trial has started> <seconds each may run without a reading>"
TRIAL_BOOTS = 3
TRIAL_S = 600
ROLLED_BACK = "romfs.rolledback"  # why the last update was taken back


def boot(log=print):
    # -> True when the caller must restart (an image was written)
    if _exists(NEW):
        return apply(log)
    try:
        with open(TRIAL) as f:
            t = f.read().split()
        n = int(t[0]) + 1
        s = int(t[1]) if len(t) > 1 else TRIAL_S
    except (OSError, ValueError, IndexError):  # torn or empty: the trial starts over
        n, s = 1, TRIAL_S
    if n <= TRIAL_BOOTS:
        _write(TRIAL, "%d %d" % (n, s))
        log("update: the new image is on trial, boot %d of %d without a reading delivered" % (n, TRIAL_BOOTS))
        return False
    # The verdict first (deploy --wait reads it once the trial is gone),
    # then off trial: the image put back is not on trial
    if not _exists(OLD):
        why = "the new image delivered nothing in %d boots, and there is no previous one to go back to" % TRIAL_BOOTS
        log("update: " + why)
        _write(ROLLED_BACK, why)
        os.remove(TRIAL)
        return False
    why = "the new image delivered no reading in %d boots: back to the previous one" % TRIAL_BOOTS
    try:  # which build it was (upynode build's id, in the image still mounted at /rom)
        with open("/rom/lib/upynode/build.txt") as f:
            why += " (build %s taken back)" % f.read().strip()
    except OSError:
        pass
    log("update: " + why)
    _write(ROLLED_BACK, why)
    os.remove(TRIAL)
    os.rename(OLD, NEW)  # staged as any image: a power cut from here on is one more apply
    return apply(log)


def _write(path, text):
    # beside it, then renamed: never a torn file
    with open(path + ".tmp", "w") as f:
        f.write(text)
    _replace(path + ".tmp", path)


def _replace(tmp, path):
    try:
        os.rename(tmp, path)
    except OSError:  # FAT: no rename over a file
        os.remove(path)
        os.rename(tmp, path)


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _hash_part(seg, n):
    # sha256 of the partition's first n bytes, a slice at a time (the chip's
    # segment is a memoryview of the flash: slices copy nothing)
    import hashlib
    h = hashlib.sha256()
    for i in range(0, n, CHUNK):
        h.update(seg[i:min(i + CHUNK, n)])
    return h.digest()


def _hash_file(path, buf):
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            k = f.readinto(buf)
            if not k:
                return h.digest()
            h.update(memoryview(buf)[:k])


def _image_len(seg):
    # The length of the image the partition holds (header, size as a
    # varuint, payload), 0 if it holds none.
    if bytes(seg[0:3]) != HEADER:
        return 0
    size = 0
    for i in range(3, 8):
        b = seg[i]
        size = size << 7 | b & 0x7F
        if not b & 0x80:
            return i + 1 + size
    return 0


def _keep(seg, n):
    # The image that runs now, as romfs.old (beside it, then renamed: never
    # a torn copy). Not upynode.save: nothing here may be imported from the
    # flash that is about to be rewritten.
    tmp = OLD + ".tmp"
    with open(tmp, "wb") as f:
        for i in range(0, n, CHUNK):
            f.write(seg[i:min(i + CHUNK, n)])
    _replace(tmp, OLD)


def apply(log=print):
    # -> True when it wrote the partition (the caller restarts into the new
    # image), False when there was nothing to write (romfs.new is gone if
    # the partition holds it already); raises if the write failed.
    import vfs
    if not hasattr(vfs, "rom_ioctl") or vfs.rom_ioctl(1) < 1:
        log("update: %s is staged, but this firmware has no ROMFS partition" % NEW)
        return False
    seg = vfs.rom_ioctl(2, 0)
    n = os.stat(NEW)[6]
    if n > len(seg):
        log("update: %s (%d B) is bigger than the ROMFS partition (%d B)" % (NEW, n, len(seg)))
        return False
    buf = bytearray(CHUNK)
    want = _hash_file(NEW, buf)
    wrote = _hash_part(seg, n) != want  # else a cut after the write: only the clean-up is left
    if wrote:
        if not _exists(WRITING):
            old = _image_len(seg)
            if 0 < old <= len(seg):
                try:
                    _keep(seg, old)
                except OSError as e:  # a full filesystem: the update goes on without a copy
                    log("update: could not keep the old image as %s: %s" % (OLD, e))
        open(WRITING, "w").close()
        try:
            vfs.umount("/rom")  # nothing may run from flash being rewritten
        except OSError:
            pass
        step = vfs.rom_ioctl(3, 0, n)  # erase what the image needs: the smallest write, or -errno
        if step < 0:
            raise OSError(-step)
        with open(NEW, "rb") as f:
            at = 0
            while at < n:
                k = f.readinto(buf)
                if not k:
                    raise OSError("%s ended at %d of %d B" % (NEW, at, n))
                pad = -k % step  # the flash takes whole words: pad the last piece
                for i in range(k, k + pad):
                    buf[i] = 0xFF
                r = vfs.rom_ioctl(4, 0, at, memoryview(buf)[:k + pad])
                if r < 0:
                    raise OSError(-r)
                at += k
        vfs.rom_ioctl(5, 0)  # write complete: nothing on the ESP8266 (-EINVAL), ports that need it
        if _hash_part(seg, n) != want:
            raise OSError("the ROMFS partition does not hold what was written")
    os.remove(NEW)
    try:
        os.remove(WRITING)
    except OSError:
        pass
    if wrote:
        log("update: the new ROMFS image (%d B) is written; restarting into it" % n)
    return wrote
