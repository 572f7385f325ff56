// kiln.collective_start (KilnCollectiveOps.td): the ops that hand buffers to a communicator.
#pragma once

#include "kiln/ir/KilnDialect.h"

#define GET_OP_CLASSES
#include "kiln/ir/KilnCollectiveOps.h.inc"
