# upynode: the firmware's package. Only release() lives here, so that every
# module can give back the RAM of modules that have done their job.


def release(*names):
    # Forget upynode.<name> for good: both references to it, the one in
    # sys.modules and the package's attribute, or the GC cannot free it.
    import sys
    for name in names:
        sys.modules.pop("upynode." + name, None)
        if name in globals():
            del globals()[name]
