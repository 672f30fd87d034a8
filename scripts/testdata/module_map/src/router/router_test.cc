#include "platform/testing/fake.h"
#include "platform/platform.h"
#include "router/testing/upstream.h"
#include "controller/engine.h"
