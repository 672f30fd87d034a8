#include "platform/platform.h"
#include "platform/testing/fake.h"
#include "router/router.h"
