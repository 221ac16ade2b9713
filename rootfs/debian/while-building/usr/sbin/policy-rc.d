#!/bin/sh
# no service starts in the root while packages are installed (invoke-rc.d asks this)
exit 101
