#include "router/testing/upstream.h"
#include "router/router.h"
#include "platform/platform.h"
#include "controller/engine.h"
