package jitai.policy

helper if {
	input.context.driving == true
