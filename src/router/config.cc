#include "router/config.h"
