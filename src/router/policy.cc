#include "router/policy.h"
